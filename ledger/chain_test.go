package ledger

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestVerifyLongChain(t *testing.T) {
	entries, genesis := buildChain(t, 1000, 300)
	if err := Verify(entries, genesis); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(nil, genesis); err != nil {
		t.Errorf("Verify of an empty ledger: %v", err)
	}
	// Every entry survives the wire.
	for i := range entries {
		raw, err := Marshal(entries[i])
		if err != nil {
			t.Fatal(err)
		}
		if entries[i], err = Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := Verify(entries, genesis); err != nil {
		t.Fatalf("Verify after a wire round trip: %v", err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	entries, genesis := buildChain(t, 1000, 300)
	tamper := []struct {
		name   string
		change func(e *Entry)
		why    string
	}{
		{"payload byte", func(e *Entry) {
			p := []byte(string(e.PayloadSnapshot))
			p[strings.Index(string(p), "note")] = 'N'
			e.PayloadSnapshot = p
		}, "does not match its content"},
		{"payload respelled with a new member", func(e *Entry) {
			e.PayloadSnapshot = json.RawMessage(strings.Replace(string(e.PayloadSnapshot), "{", `{"extra":0,`, 1))
		}, "does not match its content"},
		{"eventType", func(e *Entry) { e.EventType = "close_case" }, "does not match its content"},
		{"logObjectId", func(e *Entry) { e.LogObjectID += "x" }, "does not match its content"},
		{"disposition", func(e *Entry) { e.Disposition = Rejected }, "does not match its content"},
		{"term", func(e *Entry) { term := int64(0); e.Term = &term }, "does not match its content"},
		{"reasonCode", func(e *Entry) { e.ReasonCode = "x" }, "does not match its content"},
		{"logIndex", func(e *Entry) { e.LogIndex++ }, "logIndex is"},
		{"prevLogHash", func(e *Entry) { e.PrevLogHash = strings.Repeat("0", 64) }, "does not chain"},
		{"receivedAt", func(e *Entry) { e.ReceivedAt = "2030-01-01T00:00:00Z" }, "does not match its content"},
		{"receivedAt respelled", func(e *Entry) { e.ReceivedAt = strings.Replace(e.ReceivedAt, "Z", "+00:00", 1) }, "receivedAt"},
		{"entryHash", func(e *Entry) { e.EntryHash = strings.Repeat("f", 64) }, "does not match its content"},
		{"caseId", func(e *Entry) { e.CaseID += "/other" }, ""},
	}
	for _, tc := range tamper {
		for _, at := range []int{0, 1, 499, 998, 999} {
			if tc.name == "caseId" && at == 0 {
				continue // changes the case of the whole ledger: caught at entry 1
			}
			ledger := make([]Entry, len(entries))
			copy(ledger, entries)
			tc.change(&ledger[at])
			err := Verify(ledger, genesis)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Errorf("%s at %d: Verify = %v, want a *ChainError", tc.name, at, err)
				continue
			}
			if ce.Index != at || !strings.Contains(ce.Reason, tc.why) {
				t.Errorf("%s at %d: got %v, want index %d and a reason mentioning %q", tc.name, at, err, at, tc.why)
			}
		}
	}
}

func TestVerifyStructure(t *testing.T) {
	entries, genesis := buildChain(t, 5, 100)
	for _, tc := range []struct {
		name   string
		ledger []Entry
		gen    string
		index  int
		why    string
	}{
		{"wrong genesis", entries, strings.Repeat("1", 64), 0, "does not chain"},
		{"not from 0", entries[1:], genesis, 0, "logIndex is 1, want 0"},
		{"gap", append(append([]Entry{}, entries[:2]...), entries[3:]...), genesis, 2, "logIndex is 3, want 2"},
		{"repeated entry", append(append([]Entry{}, entries[:3]...), entries[2:]...), genesis, 3, "logIndex is 2, want 3"},
		{"reordered", []Entry{entries[0], entries[2], entries[1]}, genesis, 1, "logIndex is 2, want 1"},
	} {
		err := Verify(tc.ledger, tc.gen)
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Index != tc.index || !strings.Contains(ce.Reason, tc.why) {
			t.Errorf("%s: Verify = %v, want entry %d: %s", tc.name, err, tc.index, tc.why)
		}
	}
	// An entry of another case that chains correctly is still refused.
	other := make([]Entry, 2)
	copy(other, entries[:2])
	other[1].CaseID = "https://vendor.example/cases/c2"
	if err := other[1].Seal(); err != nil {
		t.Fatal(err)
	}
	err := Verify(other, genesis)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Index != 1 || !strings.Contains(ce.Reason, "belongs to case") {
		t.Errorf("mixed cases: Verify = %v", err)
	}
}

func BenchmarkVerify30000(b *testing.B) {
	entries, genesis := buildChain(b, 30000, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Verify(entries, genesis); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/30000, "ns/entry")
}

func BenchmarkCanonicalize1KiB(b *testing.B) {
	payload := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://vendor.example/cases/c1/activities/42","type":"Add",` +
		`"actor":"https://finder.example/actors/finder","to":["https://vendor.example/actors/case-actor"],"context":"https://vendor.example/cases/c1",` +
		`"published":"2025-03-14T14:09:26Z","object":{"type":"Note","id":"https://finder.example/notes/7","attributedTo":"https://finder.example/actors/finder",` +
		`"name":"Reproduction steps","mediaType":"text/markdown","content":"` + strings.Repeat("Send a crafted request to /api; the service crashes.\\n", 8) + `",` +
		`"tags":["dos","crash","remote"],"severity":7.5,"cwe":[400,770],"verified":true,"ref":null},"target":"https://vendor.example/cases/c1"}`)
	if len(payload) < 1000 || len(payload) > 1100 {
		b.Fatalf("payload is %d bytes, want about 1 KiB", len(payload))
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(payload); err != nil {
			b.Fatal(err)
		}
	}
}
