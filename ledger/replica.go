package ledger

import (
	"errors"
	"fmt"
)

// ErrWrongCase reports an entry of another case than the replica's.
var ErrWrongCase = errors.New("ledger entry belongs to another case")

// OfferResult says what Replica.Offer did with an entry.
type OfferResult int

// The results of Replica.Offer.
const (
	// Refused: the entry is malformed or of another case; the error says
	// which. The replica is unchanged.
	Refused OfferResult = iota
	// Applied: the entry chained onto the tail and is now the tail.
	Applied
	// Duplicate: the entry is at or before the tail. At the tail its hash
	// was compared; before it, the caller compares it with the entry it
	// holds at that index.
	Duplicate
	// Ahead: the entry is past the next index; the replica lacks the
	// entries from Next up to it. Nothing is kept: the caller fetches the
	// missing entries from the Case Actor, in order, and this one with
	// them.
	Ahead
	// Mismatch: the entry does not chain onto the replica, or its hash does
	// not recompute; the error is a *MismatchError.
	Mismatch
)

func (r OfferResult) String() string {
	switch r {
	case Refused:
		return "refused"
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Ahead:
		return "ahead"
	case Mismatch:
		return "mismatch"
	}
	return fmt.Sprintf("OfferResult(%d)", int(r))
}

// MismatchError reports an entry that does not fit the replica's chain.
// Tail is the hash of the last entry the replica holds (the genesis hash
// when it holds none).
type MismatchError struct {
	CaseID string
	Index  int64
	Tail   string
	Reason string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("ledger entry %d of case %q does not chain: %s (last good hash %s)", e.Index, e.CaseID, e.Reason, e.Tail)
}

// Replica is the receive-side state of one participant's copy of a case
// ledger. It is a plain value: the caller loads it, offers it entries and
// persists it. Next is the logIndex expected next (the number of entries
// applied) and Tail the entryHash of the last applied entry (empty before
// any, when the next entry chains to Genesis).
//
// A replica applies entries in ledger order only. It keeps no entries that
// arrive early: a replica that is behind fetches what it lacks from the
// Case Actor, in order, so what it stores while behind does not grow with
// how far behind it is.
type Replica struct {
	CaseID  string `json:"caseId"`
	Genesis string `json:"genesis"`
	Next    int64  `json:"next"`
	Tail    string `json:"tail"`
}

// Offer verifies an entry the Case Actor recorded and advances the replica
// when it is the next one. Offer changes r in memory; the caller applies an
// Applied entry's domain effects to its case state first and persists the
// case state together with r, in one transaction, so that a crash never
// leaves a persisted replica ahead of the state it describes. On every
// result but Applied the replica is unchanged.
func (r *Replica) Offer(e Entry) (OfferResult, error) {
	if e.CaseID != r.CaseID {
		return Refused, fmt.Errorf("%w: entry %d is of case %q, the replica of %q", ErrWrongCase, e.LogIndex, e.CaseID, r.CaseID)
	}
	if err := e.validate(true); err != nil {
		return Refused, err
	}
	if reason := checkHash(&e); reason != "" {
		return Mismatch, r.mismatch(e.LogIndex, reason)
	}
	tail := r.TailHash()
	switch {
	case e.LogIndex < r.Next-1:
		return Duplicate, nil
	case e.LogIndex == r.Next-1:
		if e.EntryHash != tail {
			return Mismatch, r.mismatch(e.LogIndex, fmt.Sprintf("entryHash %s forks from the entry held at that index", e.EntryHash))
		}
		return Duplicate, nil
	case e.LogIndex > r.Next:
		return Ahead, nil
	}
	if e.PrevLogHash != tail {
		return Mismatch, r.mismatch(e.LogIndex, fmt.Sprintf("prevLogHash %s is not the tail", e.PrevLogHash))
	}
	r.Next, r.Tail = e.LogIndex+1, e.EntryHash
	return Applied, nil
}

// TailHash returns the hash the next entry must chain to: the last entry's
// hash, or the genesis hash before any entry.
func (r *Replica) TailHash() string {
	if r.Next == 0 && r.Tail == "" {
		return r.Genesis
	}
	return r.Tail
}

func (r *Replica) mismatch(index int64, reason string) *MismatchError {
	return &MismatchError{CaseID: r.CaseID, Index: index, Tail: r.TailHash(), Reason: reason}
}
