package ledger

import (
	"errors"
	"fmt"
)

// DefaultMaxBuffer is how many entries a Replica buffers ahead of a gap
// when its MaxBuffer is zero.
const DefaultMaxBuffer = 10000

// Errors of Replica.Offer that are not chain mismatches.
var (
	// ErrWrongCase reports an entry of another case than the replica's.
	ErrWrongCase = errors.New("ledger entry belongs to another case")
	// ErrBufferFull reports an entry ahead of a gap that the replica has
	// no room left to buffer.
	ErrBufferFull = errors.New("ledger replica buffer is full")
)

// OfferResult says what Replica.Offer did with an entry.
type OfferResult int

// The results of Replica.Offer.
const (
	// Refused: the entry is malformed, of another case, or cannot be
	// buffered; the error says which. The replica is unchanged.
	Refused OfferResult = iota
	// Applied: the entry, and any buffered entries it unblocked, chained
	// onto the tail and are returned in ledger order; nothing is missing.
	Applied
	// Duplicate: the replica already holds or buffers the entry, or holds
	// an earlier part of the ledger that the entry belongs to.
	Duplicate
	// Gap: entries are missing before a buffered entry (Missing says
	// which). Entries may have been applied as well.
	Gap
	// Mismatch: the entry does not chain onto the replica, or its hash
	// does not recompute; the error is a *MismatchError naming the last
	// good hash, from which the Case Actor should replay.
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
	case Gap:
		return "gap"
	case Mismatch:
		return "mismatch"
	}
	return fmt.Sprintf("OfferResult(%d)", int(r))
}

// MismatchError reports an entry that does not fit the replica's chain.
// Tail is the hash of the last entry the replica holds (the genesis hash
// when it holds none): the replica answers with Reject(CaseLedgerEntry)
// carrying Tail, and the Case Actor replays the ledger after it.
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
// applied), Tail the entryHash of the last applied entry (Genesis, or
// empty, before any), Buffer the verified entries received ahead of a gap,
// and MaxBuffer the bound on Buffer (DefaultMaxBuffer when zero).
type Replica struct {
	CaseID    string          `json:"caseId"`
	Genesis   string          `json:"genesis"`
	Next      int64           `json:"next"`
	Tail      string          `json:"tail"`
	Buffer    map[int64]Entry `json:"buffer,omitempty"`
	MaxBuffer int             `json:"maxBuffer,omitempty"`
}

// Offer verifies an entry the Case Actor announced and advances the
// replica. It returns the entries that became applicable, in ledger
// order: e itself when it is the next one, followed by the buffered
// entries it unblocks, each verified. Offer changes r in memory; the
// caller must apply each returned entry's domain effects to its case
// state first and only then persist the case state together with r, in
// one transaction, so that a crash never leaves a persisted replica ahead
// of the state it describes. Applied entries are returned only with a nil
// error; on an error the replica's Next and Tail are unchanged.
//
// An entry ahead of Next is verified on its own, checked against the
// buffered entries next to it, and buffered (Gap). An entry behind Next is
// a Duplicate; the one just behind it must carry the Tail hash, or it is
// a fork (Mismatch). When buffered entries disagree with each other or
// with the entry that would unblock them, the buffer is dropped and Offer
// reports a Mismatch, so that the Case Actor replays from the Tail.
func (r *Replica) Offer(e Entry) (applied []Entry, result OfferResult, err error) {
	if e.CaseID != r.CaseID {
		return nil, Refused, fmt.Errorf("%w: entry %d is of case %q, the replica of %q", ErrWrongCase, e.LogIndex, e.CaseID, r.CaseID)
	}
	if err := e.validate(true); err != nil {
		return nil, Refused, err
	}
	if reason := checkHash(&e); reason != "" {
		return nil, Mismatch, r.mismatch(e.LogIndex, reason)
	}
	tail := r.tail()
	switch {
	case e.LogIndex < r.Next-1:
		return nil, Duplicate, nil
	case e.LogIndex == r.Next-1:
		if e.EntryHash != tail {
			return nil, Mismatch, r.mismatch(e.LogIndex, fmt.Sprintf("entryHash %s forks from the entry held at that index", e.EntryHash))
		}
		return nil, Duplicate, nil
	case e.LogIndex > r.Next:
		return r.buffer(e)
	}
	if e.PrevLogHash != tail {
		return nil, Mismatch, r.mismatch(e.LogIndex, fmt.Sprintf("prevLogHash %s is not the tail", e.PrevLogHash))
	}
	run := []Entry{e}
	prev := e.EntryHash
	for i := e.LogIndex + 1; ; i++ {
		b, ok := r.Buffer[i]
		if !ok {
			break
		}
		if reason := check(&b, i, prev); reason != "" {
			r.Buffer = nil
			return nil, Mismatch, r.mismatch(i, "buffered entry: "+reason)
		}
		run = append(run, b)
		prev = b.EntryHash
	}
	for _, b := range run[1:] {
		delete(r.Buffer, b.LogIndex)
	}
	r.Next, r.Tail = run[len(run)-1].LogIndex+1, prev
	if len(r.Buffer) > 0 {
		return run, Gap, nil
	}
	r.Buffer = nil
	return run, Applied, nil
}

// buffer keeps a verified entry that arrived ahead of a gap.
func (r *Replica) buffer(e Entry) ([]Entry, OfferResult, error) {
	if old, ok := r.Buffer[e.LogIndex]; ok {
		if old.EntryHash == e.EntryHash {
			return nil, Duplicate, nil
		}
		return r.dropBuffer(e.LogIndex, fmt.Sprintf("entryHash %s differs from the buffered %s", e.EntryHash, old.EntryHash))
	}
	if p, ok := r.Buffer[e.LogIndex-1]; ok && p.EntryHash != e.PrevLogHash {
		return r.dropBuffer(e.LogIndex, fmt.Sprintf("prevLogHash %s does not chain to the buffered entry %d (%s)", e.PrevLogHash, p.LogIndex, p.EntryHash))
	}
	if n, ok := r.Buffer[e.LogIndex+1]; ok && n.PrevLogHash != e.EntryHash {
		return r.dropBuffer(e.LogIndex, fmt.Sprintf("the buffered entry %d does not chain to it", n.LogIndex))
	}
	limit := r.MaxBuffer
	if limit <= 0 {
		limit = DefaultMaxBuffer
	}
	if len(r.Buffer) >= limit {
		return nil, Refused, fmt.Errorf("%w: %d entries of case %q wait behind entry %d", ErrBufferFull, len(r.Buffer), r.CaseID, r.Next)
	}
	if r.Buffer == nil {
		r.Buffer = make(map[int64]Entry)
	}
	r.Buffer[e.LogIndex] = e
	return nil, Gap, nil
}

func (r *Replica) dropBuffer(index int64, reason string) ([]Entry, OfferResult, error) {
	r.Buffer = nil
	return nil, Mismatch, r.mismatch(index, reason+"; buffer dropped")
}

// Missing returns the range [from, to) of log indexes the replica lacks
// before the entries it buffers; ok is false when nothing is buffered.
func (r *Replica) Missing() (from, to int64, ok bool) {
	if len(r.Buffer) == 0 {
		return 0, 0, false
	}
	first := int64(-1)
	for i := range r.Buffer {
		if first < 0 || i < first {
			first = i
		}
	}
	return r.Next, first, true
}

// tail returns the hash the next entry must chain to.
func (r *Replica) tail() string {
	if r.Next == 0 && r.Tail == "" {
		return r.Genesis
	}
	return r.Tail
}

func (r *Replica) mismatch(index int64, reason string) *MismatchError {
	return &MismatchError{CaseID: r.CaseID, Index: index, Tail: r.tail(), Reason: reason}
}
