// Package advisory derives the machine-readable documents of a case's
// advisory: a CSAF 2.0 document (csaf_security_advisory, or csaf_vex when
// every product's status is stated with what a VEX needs), a CVE JSON 5
// record (the CNA container) when the case has a CVE id, and an OSV record
// for the products named by package URLs. The functions are pure: the same
// Advisory gives the same bytes, so a published revision's documents and
// their hashes never change. The Advisory is filled in from a case's
// recorded revision (cases.Case.Advisory), so everything a document says
// comes from the ledger: the text, the products and their statuses, the
// ids, each participant's part (CSAF's involvements, from their RM, VFD
// and embargo states) and the revision history with the ledger's times.
//
// The documents are written with this package's own structs rather than a
// library's model: the CSAF model of github.com/gocsaf/csaf/v3 (used in the
// tests to validate against the official schema) pulls in its provider
// tooling, and neither CVE nor OSV has a maintained Go model of the JSON
// form; the structs below hold only the members the node writes.
package advisory

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
)

// Publisher is who publishes the advisory: the case owner's organization.
type Publisher struct {
	// Category is CSAF's publisher category: vendor, coordinator,
	// discoverer, user or other.
	Category  string
	Name      string
	Namespace string // the node's public URL
}

// Product is one product statement.
type Product struct {
	Vendor        string // the vendor's name
	Name          string
	PURL, CPE     string
	Versions      string
	Status        string // affected, fixed, not-affected, under-investigation
	Justification string
	Statement     string
}

// Involvement is one participant's part in the case.
type Involvement struct {
	Name  string
	Roles cvdstate.RoleSet
	State cvdstate.ParticipantState
}

// Revision is one entry of the revision history.
type Revision struct {
	Number  int
	Date    time.Time
	Summary string
}

// Advisory is everything the documents say.
type Advisory struct {
	TrackingID string // such as VULTRON-3Q7X
	Title      string
	Summary    string
	Details    string // HTML or text; written as text
	// URL is the advisory's page; DocumentURL(format) the URL of a
	// document ("csaf.json", "cve.json", "osv.json").
	URL          string
	CSAFURL      string
	Publisher    Publisher
	Draft        bool // a draft for review: CSAF status draft
	Revisions    []Revision
	Products     []Product
	IDs          []string // the vulnerability's ids; CVE ids first
	Involvements []Involvement
	CaseID       string
	Generator    string // "vultron VERSION"
}

// CVE returns the advisory's CVE id, or "".
func (a *Advisory) CVE() string {
	for _, id := range a.IDs {
		if cvePattern.MatchString(id) {
			return id
		}
	}
	return ""
}

var (
	cvePattern = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,19}$`)
	// tags matches what reads as markup: an element's start or end tag
	// (a letter after "<" or "</"), a comment or a declaration; a "<"
	// of text, as in "< 4.2.1" or "n<0", is none.
	tags = regexp.MustCompile(`<(?:/?[A-Za-z][^<>]*|!--[\s\S]*?--|![A-Za-z][^<>]*)>`)
)

// Text returns s, HTML or text, as plain text: without its tags, with
// its character references read.
func Text(s string) string {
	s = strings.NewReplacer("<br>", "\n", "<br/>", "\n", "</p>", "\n\n").Replace(s)
	return strings.TrimSpace(html.UnescapeString(tags.ReplaceAllString(s, "")))
}

func (a *Advisory) current() Revision {
	if len(a.Revisions) == 0 {
		return Revision{}
	}
	return a.Revisions[len(a.Revisions)-1]
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// FileName returns the CSAF file name of a tracking id (CSAF 2.0 §5.1):
// lower case, every run of other characters than + - a-z 0-9 an
// underscore, and ".json".
func FileName(trackingID string) string {
	return strings.Trim(fileUnsafe.ReplaceAllString(strings.ToLower(trackingID), "_"), "_") + ".json"
}

var fileUnsafe = regexp.MustCompile(`[^+\-a-z0-9]+`)

// UUID returns a name-based UUID (RFC 4122 version 5 layout, but marked
// version 4 as the CVE schema's uuidType requires) for s: the CVE record's
// organization id, stable for a node, which the CNA that submits the
// record replaces with its own.
func UUID(s string) string {
	sum := sha1.Sum([]byte("vultron:" + s))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Bytes is a document as served: indented JSON with a final newline.
func Bytes(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("advisory: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// vendorStatus maps a product status to CSAF's product_status member.
func csafStatus(status string) string {
	switch status {
	case "affected":
		return "known_affected"
	case "fixed":
		return "fixed"
	case "not-affected":
		return "known_not_affected"
	}
	return "under_investigation"
}

// productName is the full name of a product statement.
func productName(p Product) string {
	n := strings.TrimSpace(p.Vendor + " " + p.Name)
	if p.Versions != "" {
		n += " " + p.Versions
	}
	return n
}

// PartyOf returns CSAF's party of a participant's roles: its involvement
// party, and, for the case owner, the category of the document's
// publisher (both enumerations name the same parties).
func PartyOf(r cvdstate.RoleSet) string {
	switch {
	case r.Has(cvdstate.Vendor):
		return "vendor"
	case r.Has(cvdstate.Coordinator):
		return "coordinator"
	case r.Has(cvdstate.Finder), r.Has(cvdstate.Reporter):
		return "discoverer"
	case r.Has(cvdstate.Deployer):
		return "user"
	}
	return "other"
}

// statusOf returns CSAF's involvement status of a participant's RM state.
func statusOf(s cvdstate.ParticipantState) string {
	switch s.RM {
	case cvdstate.RMClosed:
		return "completed"
	case cvdstate.RMInvalid:
		return "disputed"
	case cvdstate.RMReceived, cvdstate.RMDeferred:
		return "open"
	case cvdstate.RMStart:
		return "contact_attempted"
	}
	return "in_progress"
}

// statusRank orders involvement statuses from the least advanced, the
// one a party of several participants is shown with.
var statusRank = []string{"contact_attempted", "open", "disputed", "in_progress", "completed"}

// describe says a participant's states in words.
func describe(i Involvement) string {
	return fmt.Sprintf("%s: report management %s, fix path %s, embargo consent %s", i.Name, i.State.RM, i.State.VFD, i.State.PEC)
}

// sortedUnique returns ss sorted without duplicates.
func sortedUnique(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}
