package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// Match is a signal about a case this node holds: the case records one of
// the signal's ids.
type Match struct {
	CaseID string `json:"case"`
	// MatchedID is the id the case and the signal share.
	MatchedID string `json:"matchedId"`
	Signal    Signal `json:"signal"`
}

// Bit returns the pxa bit the signal's kind is the evidence for.
func (k Kind) Bit() cvdstate.PXA {
	switch k {
	case Attacks:
		return cvdstate.PXAAttacks
	case ExploitPublic:
		return cvdstate.PXAExploit
	}
	return cvdstate.PXAPublic
}

// Event names the change-feed event of a signal of kind k, which is also
// the automation's decision point for it.
func (k Kind) Event() string {
	switch k {
	case Attacks:
		return "intel_attacks_observed"
	case ExploitPublic:
		return "intel_exploit_public"
	}
	return "intel_public"
}

// Matches returns the cases that record an id of a signal of f, once per
// case and kind, in the feed's order. It reads one index range per id, so
// its cost is the feed's size and the cases matched, not the cases held.
func Matches(tx *store.ReadTx, f Feed) ([]Match, error) {
	var out []Match
	seen := map[string]bool{}
	for _, s := range f.Signals {
		for _, id := range s.IDs() {
			ids, err := cases.CasesByVulnerabilityID(tx, id)
			if err != nil {
				return nil, err
			}
			for _, c := range ids {
				key := c + "\x00" + string(s.Kind)
				if !seen[key] {
					seen[key] = true
					out = append(out, Match{CaseID: c, MatchedID: id, Signal: s})
				}
			}
		}
	}
	return out, nil
}

// The signals a node offered, in the case bucket named by offeredBucket:
//
//	CASE 0 KIND   the Offered record (JSON)
//
// so that a signal is offered once per case and kind, and an analyst
// finds what intelligence says of a case.
const offeredBucket = "intelligence signals"

// Offered is a signal a node offered for a case.
type Offered struct {
	Match
	At time.Time `json:"at"`
}

// Offer records that m was offered at at, in the transaction that acts
// on it; it returns false, and records nothing, when a signal of the same
// kind was offered for the case before.
func Offer(tx *store.Tx, m Match, at time.Time) (bool, error) {
	b, err := tx.Case(offeredBucket)
	if err != nil {
		return false, err
	}
	key := []byte(m.CaseID + "\x00" + string(m.Signal.Kind))
	if b.Get(key) != nil {
		return false, nil
	}
	v, err := json.Marshal(Offered{Match: m, At: at.UTC()})
	if err != nil {
		return false, fmt.Errorf("intel: encode the signal for %s: %w", m.CaseID, err)
	}
	return true, b.Put(key, v)
}

// OfferedFor returns the signals offered for one case.
func OfferedFor(tx *store.ReadTx, caseID string) ([]Offered, error) {
	return offered(tx, []byte(caseID+"\x00"), 0)
}

// MaxListed bounds the signals one listing returns.
const MaxListed = 1000

// OfferedAll returns the signals offered for every case, in case order, at
// most limit (at most MaxListed).
func OfferedAll(tx *store.ReadTx, limit int) ([]Offered, error) {
	return offered(tx, nil, min(max(limit, 1), MaxListed))
}

var errEnough = errors.New("enough")

func offered(tx *store.ReadTx, prefix []byte, limit int) ([]Offered, error) {
	b, err := tx.Case(offeredBucket)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Offered
	err = b.Range(prefix, func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefix) || (limit > 0 && len(out) == limit) {
			return errEnough
		}
		var o Offered
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("intel: decode the signal %q: %w", k, err)
		}
		out = append(out, o)
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	slices.SortStableFunc(out, func(a, b Offered) int { return a.At.Compare(b.At) })
	return out, err
}
