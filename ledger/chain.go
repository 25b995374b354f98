package ledger

import (
	"encoding/json"
	"fmt"
	"time"
)

// NewEntry returns the sealed entry a Case Actor appends at index to the
// ledger of case caseID, after the entry whose hash is prev (the genesis
// hash for index 0): the activity objectID of type eventType, recorded,
// with payload its full JSON object, received at receivedAt. The entry
// keeps the payload in canonical form.
func NewEntry(caseID string, index int64, prev string, objectID, eventType string, payload json.RawMessage, receivedAt time.Time) (Entry, error) {
	canon, err := Canonicalize(payload)
	if err != nil {
		return Entry{}, fmt.Errorf("ledger entry %d of case %q: payload: %w", index, caseID, err)
	}
	e := Entry{
		CaseID:          caseID,
		LogIndex:        index,
		Disposition:     Recorded,
		LogObjectID:     objectID,
		EventType:       eventType,
		PayloadSnapshot: canon,
		PrevLogHash:     prev,
		ReceivedAt:      FormatTime(receivedAt),
	}
	if err := e.Seal(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// ChainError reports the first entry of a ledger that breaks the chain:
// Index is its position, which is also the logIndex it must carry.
type ChainError struct {
	Index  int
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("ledger entry %d: %s", e.Index, e.Reason)
}

// Verify checks that entries are a whole ledger from its start: entry i
// has logIndex i, all entries belong to the same case, entry 0 chains to
// genesis and every later entry to the entryHash of the one before it,
// every entry's fields are valid and every entryHash recomputes. It
// returns a *ChainError naming the first entry that fails.
func Verify(entries []Entry, genesis string) error {
	prev := genesis
	for i := range entries {
		e := &entries[i]
		if reason := check(e, int64(i), prev); reason != "" {
			return &ChainError{Index: i, Reason: reason}
		}
		if e.CaseID != entries[0].CaseID {
			return &ChainError{Index: i, Reason: fmt.Sprintf("belongs to case %q, not %q", e.CaseID, entries[0].CaseID)}
		}
		prev = e.EntryHash
	}
	return nil
}

// check verifies one entry that must sit at index after the entry whose
// hash is prev, and returns why it does not, or "".
func check(e *Entry, index int64, prev string) string {
	if e.LogIndex != index {
		return fmt.Sprintf("logIndex is %d, want %d", e.LogIndex, index)
	}
	if e.PrevLogHash != prev {
		return fmt.Sprintf("prevLogHash %s does not chain to %s", e.PrevLogHash, prev)
	}
	if reason := checkHash(e); reason != "" {
		return reason
	}
	return ""
}

// checkHash verifies an entry's fields and that its entryHash recomputes,
// and returns why it does not, or "".
func checkHash(e *Entry) string {
	if err := e.validate(true); err != nil {
		return err.Error()
	}
	h, err := e.ComputeHash()
	if err != nil {
		return err.Error()
	}
	if h != e.EntryHash {
		return fmt.Sprintf("entryHash %s does not match its content, which hashes to %s", e.EntryHash, h)
	}
	return ""
}
