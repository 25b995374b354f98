package ledger

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzUnmarshal feeds the ledger entry decoder arbitrary bytes. It must
// never panic; an entry it accepts must encode and decode back to the same
// entry, with the same hash.
func FuzzUnmarshal(f *testing.F) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	e, err := NewEntry("https://v.example/cases/1", 0, GenesisHash("https://v.example/cases/1", at, "https://v.example/actors/case-1"),
		"https://v.example/activities/1", "create_case", json.RawMessage(`{"type":"Create","id":"https://v.example/activities/1","n":1.5e3}`), at)
	if err != nil {
		f.Fatal(err)
	}
	good, err := Marshal(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"caseId":"x","logIndex":-1}`))
	f.Add([]byte(`{"caseId":"x","caseId":"y"}`))
	f.Add([]byte(`{"payloadSnapshot":{"a":"\ud800"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Unmarshal(data)
		if err != nil {
			return
		}
		again, err := Marshal(e)
		if err != nil {
			t.Fatalf("an accepted entry does not encode: %v", err)
		}
		e2, err := Unmarshal(again)
		if err != nil {
			t.Fatalf("an encoded entry does not decode: %v\n%s", err, again)
		}
		h1, err1 := e.ComputeHash()
		h2, err2 := e2.ComputeHash()
		if err1 != nil || err2 != nil || h1 != h2 {
			t.Fatalf("hash changed across a round trip: %s (%v) vs %s (%v)", h1, err1, h2, err2)
		}
	})
}
