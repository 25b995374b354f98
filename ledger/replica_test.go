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

// offer offers e and checks the result.
func offer(t *testing.T, r *Replica, e Entry, want OfferResult) error {
	t.Helper()
	got, err := r.Offer(e)
	if got != want {
		t.Fatalf("Offer(entry %d) = %v (%v), want %v", e.LogIndex, got, err, want)
	}
	return err
}

func TestReplicaInOrderAndDuplicate(t *testing.T) {
	entries, genesis := buildChain(t, 4, 300)
	r := newReplica(genesis)
	if r.TailHash() != genesis {
		t.Errorf("tail of an empty replica = %s, want the genesis hash", r.TailHash())
	}
	for _, e := range entries {
		if err := offer(t, r, e, Applied); err != nil {
			t.Fatal(err)
		}
	}
	if r.Next != 4 || r.Tail != entries[3].EntryHash {
		t.Errorf("replica at %d/%s, want 4/%s", r.Next, r.Tail, entries[3].EntryHash)
	}
	offer(t, r, entries[3], Duplicate)
	offer(t, r, entries[0], Duplicate)
}

// TestReplicaKeepsNothingAhead offers entries past the next one: they are
// reported Ahead and not kept, so the replica then takes the entries in
// order, as a fetch from the Case Actor gives them.
func TestReplicaKeepsNothingAhead(t *testing.T) {
	entries, genesis := buildChain(t, 10, 300)
	r := newReplica(genesis)
	offer(t, r, entries[0], Applied)
	for _, i := range []int{5, 9, 7, 2} {
		offer(t, r, entries[i], Ahead)
	}
	before := string(mustJSON(t, r))
	if r.Next != 1 || r.Tail != entries[0].EntryHash {
		t.Fatalf("entries ahead moved the replica to %d/%s", r.Next, r.Tail)
	}
	// The caller persists the replica between entries: what it persists
	// does not grow with what arrived ahead.
	var loaded Replica
	if err := json.Unmarshal([]byte(before), &loaded); err != nil {
		t.Fatal(err)
	}
	r = &loaded
	for _, e := range entries[1:] {
		offer(t, r, e, Applied)
	}
	if r.Next != 10 || r.Tail != entries[9].EntryHash {
		t.Errorf("replica at %d/%s, want 10/%s", r.Next, r.Tail, entries[9].EntryHash)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	offer(t, r, entries[0], Applied)
	offer(t, r, entries[1], Applied)

	// An entry 2 that does not chain onto entry 1.
	err := offer(t, r, fork(2, strings.Repeat("0", 64)), Mismatch)
	wantMismatch(err, 2, entries[1].EntryHash)
	// A different entry 1 than the one applied (a fork at the tail).
	err = offer(t, r, fork(1, entries[0].EntryHash), Mismatch)
	wantMismatch(err, 1, entries[1].EntryHash)
	// An entry whose hash does not recompute, even one ahead.
	for _, i := range []int{2, 3} {
		bad := entries[i]
		bad.ReceivedAt = "2030-01-01T00:00:00Z"
		err = offer(t, r, bad, Mismatch)
		wantMismatch(err, int64(i), entries[1].EntryHash)
		if !strings.Contains(err.Error(), "does not match its content") {
			t.Errorf("error %q does not say the hash is wrong", err)
		}
	}
	if r.Next != 2 || r.Tail != entries[1].EntryHash {
		t.Fatalf("a mismatch moved the replica to %d/%s", r.Next, r.Tail)
	}
	offer(t, r, entries[2], Applied)
	offer(t, r, entries[3], Applied)

	// Before any entry, the last good hash is the genesis.
	r = newReplica(genesis)
	err = offer(t, r, fork(0, strings.Repeat("0", 64)), Mismatch)
	wantMismatch(err, 0, genesis)
}

func TestReplicaRefuses(t *testing.T) {
	entries, genesis := buildChain(t, 2, 300)
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
	if r.Next != 0 || r.Tail != "" {
		t.Errorf("a refusal changed the replica: %+v", r)
	}
}

func TestOfferResultString(t *testing.T) {
	for r, want := range map[OfferResult]string{Refused: "refused", Applied: "applied", Duplicate: "duplicate", Ahead: "ahead", Mismatch: "mismatch", 42: "OfferResult(42)"} {
		if got := r.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(r), got, want)
		}
	}
}
