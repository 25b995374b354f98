package advisory

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"
)

// ErrNoCVE is returned by CVERecord for an advisory without a CVE id.
var ErrNoCVE = fmt.Errorf("advisory: the case records no CVE id")

// CVERecord returns the advisory as a published CVE JSON 5 record whose
// CNA container holds the title, the description, the products and their
// versions' statuses, and the references. The organization id is UUID of
// the node's namespace, for the CNA that submits the record to replace.
func CVERecord(a *Advisory) ([]byte, error) {
	cve := a.CVE()
	if cve == "" {
		return nil, ErrNoCVE
	}
	if len(a.Revisions) == 0 {
		return nil, fmt.Errorf("advisory %s: no revision", a.TrackingID)
	}
	org := UUID(a.Publisher.Namespace)
	published, updated := stamp(a.Revisions[0].Date), stamp(a.current().Date)
	desc := Text(a.Summary)
	if d := Text(a.Details); d != "" {
		desc = strings.TrimSpace(desc + "\n\n" + d)
	}
	if desc == "" {
		desc = a.Title
	}
	desc = clip(desc, 4096)
	type version struct {
		Version         string `json:"version"`
		Status          string `json:"status"`
		LessThan        string `json:"lessThan,omitempty"`
		LessThanOrEqual string `json:"lessThanOrEqual,omitempty"`
		VersionType     string `json:"versionType,omitempty"`
	}
	type product struct {
		Vendor        string    `json:"vendor"`
		Product       string    `json:"product"`
		CPEs          []string  `json:"cpes,omitempty"`
		Versions      []version `json:"versions,omitempty"`
		DefaultStatus string    `json:"defaultStatus,omitempty"`
	}
	var affected []product
	for _, p := range a.Products {
		status := map[string]string{"affected": "affected", "fixed": "unaffected", "not-affected": "unaffected"}[p.Status]
		if status == "" {
			status = "unknown"
		}
		pr := product{Vendor: orNA(p.Vendor), Product: p.Name}
		if IsCPE(p.CPE) {
			pr.CPEs = []string{p.CPE}
		}
		switch lt, le, v := parseRange(p.Versions); {
		case lt != "":
			pr.Versions = []version{{Version: "0", LessThan: lt, Status: status, VersionType: "custom"}}
		case le != "":
			pr.Versions = []version{{Version: "0", LessThanOrEqual: le, Status: status, VersionType: "custom"}}
		case v != "":
			pr.Versions = []version{{Version: v, Status: status}}
		default:
			pr.DefaultStatus = status
		}
		affected = append(affected, pr)
	}
	if len(affected) == 0 {
		affected = []product{{Vendor: orNA(a.Publisher.Name), Product: "n/a", DefaultStatus: "unknown"}}
	}
	type ref struct {
		URL  string `json:"url"`
		Name string `json:"name,omitempty"`
	}
	refs := []ref{{URL: a.URL, Name: a.Title}}
	if a.CSAFURL != "" {
		refs = append(refs, ref{URL: a.CSAFURL, Name: "CSAF " + a.TrackingID})
	}
	short := shortName(a.Publisher.Name)
	record := map[string]any{
		"dataType":    "CVE_RECORD",
		"dataVersion": "5.1",
		"cveMetadata": map[string]any{"cveId": cve, "assignerOrgId": org, "assignerShortName": short, "state": "PUBLISHED",
			"datePublished": published, "dateUpdated": updated},
		"containers": map[string]any{"cna": map[string]any{
			"providerMetadata": map[string]any{"orgId": org, "shortName": short, "dateUpdated": updated},
			"title":            clip(a.Title, 256),
			"datePublic":       published,
			"descriptions":     []map[string]string{{"lang": "en", "value": desc}},
			"affected":         affected,
			"references":       refs,
		}},
	}
	return Bytes(record)
}

// parseRange reads "< V", "<= V" or a single version "V".
func parseRange(s string) (lessThan, lessOrEqual, single string) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "<="):
		return "", strings.TrimSpace(s[2:]), ""
	case strings.HasPrefix(s, "<"):
		return strings.TrimSpace(s[1:]), "", ""
	}
	return "", "", s
}

func orNA(s string) string {
	if strings.TrimSpace(s) == "" {
		return "n/a"
	}
	return s
}

// clip returns s cut to at most n bytes, between two characters.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

var shortUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// shortName returns a CVE organization short name (2 to 32 characters).
func shortName(s string) string {
	s = strings.Trim(shortUnsafe.ReplaceAllString(s, "_"), "_")
	if len(s) < 2 {
		s = "vultron"
	}
	return clip(s, 32)
}

// ecosystems maps package URL types to OSV ecosystems.
var ecosystems = map[string]string{
	"npm": "npm", "pypi": "PyPI", "golang": "Go", "maven": "Maven", "cargo": "crates.io", "gem": "RubyGems",
	"nuget": "NuGet", "composer": "Packagist", "hex": "Hex", "pub": "Pub", "hackage": "Hackage", "cran": "CRAN",
	"swift": "SwiftURL", "conan": "ConanCenter", "github": "GitHub Actions",
}

// OSV returns the advisory as an OSV record: one affected package for each
// affected product a package URL names in an ecosystem OSV knows, with its
// version range, the case's ids as aliases, and credits for the finders,
// reporters and coordinators.
func OSV(a *Advisory) ([]byte, error) {
	if len(a.Revisions) == 0 {
		return nil, fmt.Errorf("advisory %s: no revision", a.TrackingID)
	}
	type event map[string]string
	type rng struct {
		Type   string  `json:"type"`
		Events []event `json:"events"`
	}
	type pkg struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		PURL      string `json:"purl,omitempty"`
	}
	type affected struct {
		Package  pkg      `json:"package"`
		Ranges   []rng    `json:"ranges,omitempty"`
		Versions []string `json:"versions,omitempty"`
	}
	var aff []affected
	for _, p := range a.Products {
		if p.Status != "affected" || p.PURL == "" {
			continue
		}
		u, err := packageurl.FromString(p.PURL)
		if err != nil {
			continue
		}
		eco, ok := ecosystems[u.Type]
		if !ok {
			continue
		}
		name := u.Name
		if u.Namespace != "" {
			sep := "/"
			if u.Type == "maven" {
				sep = ":"
			}
			name = u.Namespace + sep + u.Name
		}
		u.Version, u.Qualifiers, u.Subpath = "", nil, ""
		e := affected{Package: pkg{Ecosystem: eco, Name: name, PURL: u.ToString()}}
		switch lt, le, v := parseRange(p.Versions); {
		case lt != "":
			e.Ranges = []rng{{Type: "ECOSYSTEM", Events: []event{{"introduced": "0"}, {"fixed": lt}}}}
		case le != "":
			e.Ranges = []rng{{Type: "ECOSYSTEM", Events: []event{{"introduced": "0"}, {"last_affected": le}}}}
		case v != "":
			e.Versions = []string{v}
		default:
			e.Ranges = []rng{{Type: "ECOSYSTEM", Events: []event{{"introduced": "0"}}}}
		}
		aff = append(aff, e)
	}
	type credit struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	var credits []credit
	for _, i := range a.Involvements {
		switch PartyOf(i.Roles) {
		case "discoverer":
			credits = append(credits, credit{Name: i.Name, Type: "FINDER"})
		case "coordinator":
			credits = append(credits, credit{Name: i.Name, Type: "COORDINATOR"})
		}
	}
	details := Text(a.Summary)
	if d := Text(a.Details); d != "" {
		details = strings.TrimSpace(details + "\n\n" + d)
	}
	rec := map[string]any{
		"schema_version": "1.7.0",
		"id":             "x_" + a.TrackingID,
		"modified":       stamp(a.current().Date),
		"published":      stamp(a.Revisions[0].Date),
		"summary":        clip(a.Title, 120),
		"details":        details,
		"references":     []map[string]string{{"type": "ADVISORY", "url": a.URL}},
	}
	if ids := sortedUnique(a.IDs); len(ids) > 0 {
		rec["aliases"] = ids
	}
	if len(aff) > 0 {
		rec["affected"] = aff
	}
	if len(credits) > 0 {
		rec["credits"] = credits
	}
	return Bytes(rec)
}
