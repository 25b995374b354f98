package ledger

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func newReplica(genesis string) *Replica {
	return &Replica{CaseID: testCase, Genesis: genesis}
}

// offer offers e and checks the result and the log indexes applied.
func offer(t *testing.T, r *Replica, e Entry, want OfferResult, wantApplied ...int64) error {
	t.Helper()
	applied, got, err := r.Offer(e)
	if got != want {
		t.Fatalf("Offer(entry %d) = %v (%v), want %v", e.LogIndex, got, err, want)
	}
	var idx []int64
	for _, a := range applied {
		idx = append(idx, a.LogIndex)
	}
	if len(idx) != len(wantApplied) || (len(idx) > 0 && string(mustJSON(t, idx)) != string(mustJSON(t, wantApplied))) {
		t.Fatalf("Offer(entry %d) applied %v, want %v", e.LogIndex, idx, wantApplied)
	}
	return err
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplicaInOrderAndDuplicate(t *testing.T) {
	entries, genesis := buildChain(t, 4, 300)
	r := newReplica(genesis)
	for i, e := range entries {
		if err := offer(t, r, e, Applied, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if r.Next != 4 || r.Tail != entries[3].EntryHash {
		t.Errorf("replica at %d/%s, want 4/%s", r.Next, r.Tail, entries[3].EntryHash)
	}
	offer(t, r, entries[3], Duplicate)
	offer(t, r, entries[0], Duplicate)
	if _, _, ok := r.Missing(); ok {
		t.Error("Missing reports a gap on a complete replica")
	}
}

func TestReplicaOutOfOrder(t *testing.T) {
	entries, genesis := buildChain(t, 4, 300)
	r := newReplica(genesis)
	offer(t, r, entries[0], Applied, 0)
	offer(t, r, entries[3], Gap)
	if from, to, ok := r.Missing(); !ok || from != 1 || to != 3 {
		t.Errorf("Missing = %d, %d, %v; want 1, 3, true", from, to, ok)
	}
	offer(t, r, entries[3], Duplicate) // again, while buffered
	offer(t, r, entries[1], Gap, 1)    // applied, 2 still missing
	if from, to, ok := r.Missing(); !ok || from != 2 || to != 3 {
		t.Errorf("Missing = %d, %d, %v; want 2, 3, true", from, to, ok)
	}
	offer(t, r, entries[2], Applied, 2, 3)
	if r.Next != 4 || r.Tail != entries[3].EntryHash || len(r.Buffer) != 0 {
		t.Errorf("replica at %d/%s with %d buffered, want 4/%s and none", r.Next, r.Tail, len(r.Buffer), entries[3].EntryHash)
	}
}

func TestReplicaGapAndFillSurvivesPersistence(t *testing.T) {
	entries, genesis := buildChain(t, 10, 300)
	r := newReplica(genesis)
	for _, i := range []int{5, 9, 7, 6, 8} {
		offer(t, r, entries[i], Gap)
	}
	if from, to, ok := r.Missing(); !ok || from != 0 || to != 5 {
		t.Errorf("Missing = %d, %d, %v; want 0, 5, true", from, to, ok)
	}
	// The caller persists the replica between entries.
	var loaded Replica
	if err := json.Unmarshal(mustJSON(t, r), &loaded); err != nil {
		t.Fatal(err)
	}
	r = &loaded
	for i := range 4 {
		offer(t, r, entries[i], Gap, int64(i))
	}
	offer(t, r, entries[4], Applied, 4, 5, 6, 7, 8, 9)
	if r.Next != 10 || r.Tail != entries[9].EntryHash {
		t.Errorf("replica at %d/%s, want 10/%s", r.Next, r.Tail, entries[9].EntryHash)
	}
}

func TestReplicaMismatch(t *testing.T) {
	entries, genesis := buildChain(t, 4, 300)
	fork := func(i int, prev string) Entry {
		t.Helper()
		e := entries[i]
		e.EventType = "close_case"
		e.PrevLogHash = prev
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	wantMismatch := func(err error, index int64, tail string) {
		t.Helper()
		var mm *MismatchError
		if !errors.As(err, &mm) || mm.Index != index || mm.Tail != tail || mm.CaseID != testCase {
			t.Fatalf("error %v: want a *MismatchError at %d naming tail %s", err, index, tail)
		}
	}

	r := newReplica(genesis)
	offer(t, r, entries[0], Applied, 0)
	offer(t, r, entries[1], Applied, 1)

	// An entry 2 that does not chain onto entry 1.
	err := offer(t, r, fork(2, strings.Repeat("0", 64)), Mismatch)
	wantMismatch(err, 2, entries[1].EntryHash)
	// A different entry 1 than the one applied (a fork at the tail).
	err = offer(t, r, fork(1, entries[0].EntryHash), Mismatch)
	wantMismatch(err, 1, entries[1].EntryHash)
	// An entry whose hash does not recompute.
	bad := entries[2]
	bad.ReceivedAt = "2030-01-01T00:00:00Z"
	err = offer(t, r, bad, Mismatch)
	wantMismatch(err, 2, entries[1].EntryHash)
	if !strings.Contains(err.Error(), "does not match its content") {
		t.Errorf("error %q does not say the hash is wrong", err)
	}
	if r.Next != 2 || r.Tail != entries[1].EntryHash {
		t.Fatalf("a mismatch moved the replica to %d/%s", r.Next, r.Tail)
	}

	// A buffered entry from another fork than the one that fills the gap:
	// the buffer is dropped and the replica asks for a replay from its tail.
	f2 := fork(2, entries[1].EntryHash)
	f3 := fork(3, f2.EntryHash)
	offer(t, r, f3, Gap)
	err = offer(t, r, entries[2], Mismatch)
	wantMismatch(err, 3, entries[1].EntryHash)
	if len(r.Buffer) != 0 || r.Next != 2 {
		t.Fatalf("after a buffered fork: next %d, %d buffered", r.Next, len(r.Buffer))
	}
	// Two buffered neighbours that disagree.
	offer(t, r, entries[3], Gap)
	err = offer(t, r, f3, Mismatch) // same index, other hash
	wantMismatch(err, 3, entries[1].EntryHash)
	// The replay then applies cleanly.
	offer(t, r, entries[2], Applied, 2)
	offer(t, r, entries[3], Applied, 3)

	// Before any entry, the last good hash is the genesis.
	r = newReplica(genesis)
	err = offer(t, r, fork(0, strings.Repeat("0", 64)), Mismatch)
	wantMismatch(err, 0, genesis)
}

func TestReplicaRefuses(t *testing.T) {
	entries, genesis := buildChain(t, 5, 300)
	r := newReplica(genesis)

	other := entries[0]
	other.CaseID = "https://vendor.example/cases/c2"
	if err := other.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := offer(t, r, other, Refused); !errors.Is(err, ErrWrongCase) {
		t.Errorf("entry of another case: %v, want ErrWrongCase", err)
	}
	malformed := entries[0]
	malformed.LogObjectID = ""
	if err := offer(t, r, malformed, Refused); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("malformed entry: %v, want ErrInvalidEntry", err)
	}

	r.MaxBuffer = 2
	offer(t, r, entries[2], Gap)
	offer(t, r, entries[3], Gap)
	if err := offer(t, r, entries[4], Refused); !errors.Is(err, ErrBufferFull) {
		t.Errorf("buffer beyond its bound: %v, want ErrBufferFull", err)
	}
	if r.Next != 0 || len(r.Buffer) != 2 {
		t.Errorf("a refusal changed the replica: next %d, %d buffered", r.Next, len(r.Buffer))
	}
	offer(t, r, entries[0], Gap, 0)
	offer(t, r, entries[1], Applied, 1, 2, 3)
	offer(t, r, entries[4], Applied, 4)
}

func TestReplicaDefaultBufferBound(t *testing.T) {
	entries, genesis := buildChain(t, 2, 300)
	r := newReplica(genesis)
	r.Buffer = make(map[int64]Entry, DefaultMaxBuffer)
	for i := range int64(DefaultMaxBuffer) {
		r.Buffer[1000+i] = Entry{LogIndex: 1000 + i} // placeholders: only the count matters here
	}
	if err := offer(t, r, entries[1], Refused); !errors.Is(err, ErrBufferFull) {
		t.Errorf("buffer at DefaultMaxBuffer: %v, want ErrBufferFull", err)
	}
}

func TestOfferResultString(t *testing.T) {
	for r, want := range map[OfferResult]string{Refused: "refused", Applied: "applied", Duplicate: "duplicate", Gap: "gap", Mismatch: "mismatch", 42: "OfferResult(42)"} {
		if got := r.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(r), got, want)
		}
	}
}
