package cases

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// A case records the ids its vulnerability is known by (a CVE id and its
// aliases: GHSA, OSV, a vendor's own) through the ledger like every case
// activity: Add(VulnerabilityRecord) to the case, whose name is the main
// id and whose aliases are the others (docs/protocol.md). Threat
// intelligence finds cases by these ids (CasesByVulnerabilityID), through
// an index saveCase keeps in the case bucket named by vulnIDIndex:
//
//	ID 0 CASE   empty; one key per id a case records
//
// and, in each case's bucket under keyVulnIDsIndexed, how many of the
// case's ids are indexed (ids are only ever added).

// MaxVulnerabilityIDs bounds the ids one case records.
const MaxVulnerabilityIDs = 32

// maxVulnerabilityIDLen bounds the length of one id.
const maxVulnerabilityIDLen = 64

const vulnIDIndex = "vulnerability ids"

// cveID is the form of a CVE id.
var cveID = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,19}$`)

var keyVulnIDsIndexed = []byte("vulnerability ids indexed")

// NormalVulnerabilityID returns id in the form a case keeps, upper case,
// or false when it is not an id: 1 to 64 letters, digits and the
// punctuation ids use (- _ . : /); an id that starts with CVE- is a CVE
// id, CVE-YYYY-NNNN with four or more digits at the end.
func NormalVulnerabilityID(id string) (string, bool) {
	id = strings.ToUpper(strings.TrimSpace(id))
	if id == "" || len(id) > maxVulnerabilityIDLen {
		return "", false
	}
	if strings.HasPrefix(id, "CVE-") && !cveID.MatchString(id) {
		return "", false
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/", r)) {
			return "", false
		}
	}
	return id, true
}

// addVulnerabilityIDs records the ids of an Add(VulnerabilityRecord).
func (c *Case) addVulnerabilityIDs(act *vocab.Activity) error {
	rec, ok := act.Object.Object.(*vocab.VulnerabilityRecord)
	if !ok {
		return problem.Unprocessable("the ids added to case %s must be an inline VulnerabilityRecord", c.ID)
	}
	if rec.Name == "" {
		return problem.Unprocessable("the VulnerabilityRecord added to case %s has no name: name it by its id, such as CVE-2026-1234", c.ID)
	}
	ids := c.VulnerabilityIDs
	added := false
	for _, raw := range append([]string{rec.Name}, rec.Aliases...) {
		id, ok := NormalVulnerabilityID(raw)
		if !ok {
			return problem.Unprocessable("%q is not a vulnerability id: want 1 to %d letters, digits and - _ . : /, a CVE id as CVE-YYYY-NNNN, such as CVE-2026-1234", raw, maxVulnerabilityIDLen)
		}
		if !slices.Contains(ids, id) {
			ids = append(slices.Clip(ids), id)
			added = true
		}
	}
	if len(ids) > MaxVulnerabilityIDs {
		return problem.Unprocessable("case %s would record %d vulnerability ids, over the %d a case may", c.ID, len(ids), MaxVulnerabilityIDs)
	}
	if !added {
		return problem.Conflict("case %s records these ids already", c.ID)
	}
	c.VulnerabilityIDs = ids
	return nil
}

// indexVulnerabilityIDs indexes the ids of case c, whose record is being
// saved in bucket b, that are not indexed yet.
func indexVulnerabilityIDs(tx *store.Tx, b *store.CaseBucket, c *Case) error {
	done := 0
	if v := b.Get(keyVulnIDsIndexed); len(v) == 1 {
		done = int(v[0])
	}
	if done >= len(c.VulnerabilityIDs) {
		return nil
	}
	idx, err := tx.Case(vulnIDIndex)
	if err != nil {
		return err
	}
	for _, id := range c.VulnerabilityIDs[done:] {
		if err := idx.Put([]byte(id+"\x00"+c.ID), nil); err != nil {
			return err
		}
	}
	return b.Put(keyVulnIDsIndexed, []byte{byte(len(c.VulnerabilityIDs))})
}

// CasesByVulnerabilityID returns the cases this node holds that record id
// (any case), in id order. Its cost is the cases it returns.
func CasesByVulnerabilityID(tx *store.ReadTx, id string) ([]string, error) {
	id, ok := NormalVulnerabilityID(id)
	if !ok {
		return nil, nil
	}
	idx, err := tx.Case(vulnIDIndex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	err = idx.RangePrefix([]byte(id+"\x00"), func(k, _ []byte) error {
		out = append(out, string(k[len(id)+1:]))
		return nil
	})
	return out, err
}
