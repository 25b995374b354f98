package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testCase      = "https://vendor.example/cases/c1"
	testActor     = "https://vendor.example/actors/c1-case-actor"
	testPublished = time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.FixedZone("CET", 3600))
)

// testPayload returns an activity of about size bytes (at least 300) as
// a case's ledger records it.
func testPayload(i int64, size int) json.RawMessage {
	id := jsonInt(i)
	var notes strings.Builder
	for notes.Len() < size-300 {
		notes.WriteString(`,{"type":"Note","id":"https://finder.example/notes/` + id + `","n":` + jsonInt(int64(notes.Len())) + `,"ok":true}`)
	}
	return json.RawMessage(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","id":"https://vendor.example/activities/` + id +
		`","actor":"https://finder.example/actors/f","to":["https://vendor.example/actors/c1-case-actor"],"published":"2025-03-14T14:09:26Z",` +
		`"context":"https://vendor.example/cases/c1","object":{"type":"Note","content":"note \u00e9 \n","tags":[1.5,-0,2e3,null` + notes.String() + `]}}`)
}

func jsonInt(i int64) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// buildChain returns a sealed ledger of n entries for testCase.
func buildChain(t testing.TB, n int, payloadSize int) ([]Entry, string) {
	t.Helper()
	genesis := GenesisHash(testCase, testPublished, testActor)
	entries := make([]Entry, 0, n)
	prev := genesis
	at := time.Date(2025, 3, 14, 14, 0, 0, 0, time.UTC)
	for i := range int64(n) {
		e, err := NewEntry(testCase, i, prev, "https://vendor.example/activities/"+jsonInt(i), "add_note_to_case",
			testPayload(i, payloadSize), at.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatalf("NewEntry %d: %v", i, err)
		}
		entries = append(entries, e)
		prev = e.EntryHash
	}
	return entries, genesis
}

func TestGenesisHash(t *testing.T) {
	// sha256("https://vendor.example/cases/c1|2025-03-14T14:09:26.535Z|https://vendor.example/actors/c1-case-actor")
	got := GenesisHash(testCase, testPublished, testActor)
	if want := "9e302e382c315c617d4ec546d608bd4a5848c42f3a933e4806755bb9921e07f3"; got != want {
		t.Fatalf("GenesisHash = %s, want %s", got, want)
	}
	same := GenesisHash(testCase, testPublished.UTC(), testActor)
	if got != same {
		t.Errorf("the time zone of published changes the genesis hash: %s vs %s", got, same)
	}
	if GenesisHash(testCase, testPublished.Add(time.Millisecond), testActor) == got ||
		GenesisHash(testCase+"x", testPublished, testActor) == got ||
		GenesisHash(testCase, testPublished, testActor+"x") == got {
		t.Error("GenesisHash ignores one of its inputs")
	}
}

func TestFormatTime(t *testing.T) {
	for in, want := range map[time.Time]string{
		time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC):                          "2025-01-02T03:04:05Z",
		time.Date(2025, 1, 2, 3, 4, 5, 250000000, time.UTC):                  "2025-01-02T03:04:05.25Z",
		time.Date(2025, 1, 2, 3, 4, 5, 1, time.FixedZone("X", -5*3600)):      "2025-01-02T08:04:05.000000001Z",
		time.Date(2025, 1, 2, 0, 30, 0, 0, time.FixedZone("Y", 2*3600+1800)): "2025-01-01T22:00:00Z",
	} {
		if got := FormatTime(in); got != want {
			t.Errorf("FormatTime(%v) = %s, want %s", in, got, want)
		}
	}
}

// TestHashIsJCSOfWireObject checks the hashing rule from its definition:
// SHA-256 of the JCS form of the wire object without entryHash, built
// here through encoding/json and the generic canonicalizer.
func TestHashIsJCSOfWireObject(t *testing.T) {
	term := int64(3)
	for _, e := range []Entry{
		mustEntry(t, 0, GenesisHash(testCase, testPublished, testActor)),
		func() Entry {
			e := mustEntry(t, 7, strings.Repeat("ab", 32))
			e.Disposition, e.Term, e.ReasonCode, e.ReasonDetail = Rejected, &term, "not_a_participant", "é \"quoted\"\n\u2028"
			e.PayloadSnapshot = json.RawMessage(` { "z" : 1.50 , "a" : [ "\u00e9" , 1E2 ] } `)
			if err := e.Seal(); err != nil {
				t.Fatal(err)
			}
			return e
		}(),
	} {
		generic, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal(generic, &obj); err != nil {
			t.Fatal(err)
		}
		obj["type"] = TypeName
		obj["@context"] = "https://example.org/any-context"
		wire, _ := json.Marshal(obj)
		delete(obj, "entryHash")
		delete(obj, "@context")
		unhashed, _ := json.Marshal(obj)
		jcs, err := Canonicalize(unhashed)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256Hex(jcs); e.EntryHash != want {
			t.Errorf("entry %d: EntryHash %s, want sha256(JCS) %s of %s", e.LogIndex, e.EntryHash, want, jcs)
		}
		// Marshal writes the canonical wire object, entryHash included.
		delete(obj, "@context")
		obj["entryHash"] = e.EntryHash
		full, _ := json.Marshal(obj)
		wantWire, _ := Canonicalize(full)
		got, err := Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(wantWire) {
			t.Errorf("Marshal:\n got %s\nwant %s", got, wantWire)
		}
		// The wire object with @context reads back to an entry with the same hash.
		back, err := Unmarshal(wire)
		if err != nil {
			t.Fatalf("Unmarshal(%s): %v", wire, err)
		}
		if h, err := back.ComputeHash(); err != nil || h != e.EntryHash {
			t.Errorf("hash after a round trip = %s, %v; want %s", h, err, e.EntryHash)
		}
	}
}

func mustEntry(t *testing.T, index int64, prev string) Entry {
	t.Helper()
	e, err := NewEntry(testCase, index, prev, "https://vendor.example/activities/1", "validate_report",
		json.RawMessage(`{"type":"Accept","id":"https://vendor.example/activities/1"}`), testPublished)
	if err != nil {
		t.Fatalf("NewEntry: %v", err)
	}
	return e
}

func TestUnmarshalSpellingsAgree(t *testing.T) {
	e := mustEntry(t, 0, GenesisHash(testCase, testPublished, testActor))
	wire, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	// Reordered members, whitespace, escapes, a null term and an empty reason.
	respelled := `{ "type":"CaseLedgerEntry", "term": null, "reasonCode": "", "entryHash":"` + e.EntryHash + `",
	  "payloadSnapshot": { "id" : "https://vendor.example/activities/1", "type":"Accept" },
	  "caseId":"https:\/\/vendor.example\/cases\/c1", "logIndex": 0.0e0, "disposition":"recorded",
	  "logObjectId":"https://vendor.example/activities/1","eventType":"validate_report",
	  "prevLogHash":"` + e.PrevLogHash + `","receivedAt":"` + e.ReceivedAt + `","@context":["a","b"]}`
	got, err := Unmarshal([]byte(respelled))
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	back, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != string(wire) {
		t.Errorf("respelled entry marshals to\n%s\nwant\n%s", back, wire)
	}
	if err := Verify([]Entry{got}, e.PrevLogHash); err != nil {
		t.Errorf("respelled entry does not verify: %v", err)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	e := mustEntry(t, 0, GenesisHash(testCase, testPublished, testActor))
	wire, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var good map[string]any
	if err := json.Unmarshal(wire, &good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		why    string
	}{
		{"empty caseId", func(m map[string]any) { m["caseId"] = "" }, "caseId is empty"},
		{"missing logObjectId", func(m map[string]any) { delete(m, "logObjectId") }, "logObjectId is empty"},
		{"empty eventType", func(m map[string]any) { m["eventType"] = "" }, "eventType is empty"},
		{"negative logIndex", func(m map[string]any) { m["logIndex"] = -1 }, "logIndex -1"},
		{"fractional logIndex", func(m map[string]any) { m["logIndex"] = 1.5 }, "logIndex"},
		{"missing logIndex", func(m map[string]any) { delete(m, "logIndex") }, "logIndex is missing"},
		{"null logIndex", func(m map[string]any) { m["logIndex"] = nil }, "logIndex: is null"},
		{"huge logIndex", func(m map[string]any) { m["logIndex"] = 1e17 }, "outside"},
		{"bad disposition", func(m map[string]any) { m["disposition"] = "accepted" }, "disposition"},
		{"uppercase hash", func(m map[string]any) { m["entryHash"] = strings.ToUpper(e.EntryHash) }, "entryHash"},
		{"short prevLogHash", func(m map[string]any) { m["prevLogHash"] = "abc" }, "prevLogHash"},
		{"receivedAt not a time", func(m map[string]any) { m["receivedAt"] = "yesterday" }, "receivedAt"},
		{"receivedAt with offset", func(m map[string]any) { m["receivedAt"] = "2025-03-14T15:09:26.535+01:00" }, "not written as"},
		{"receivedAt trailing zeros", func(m map[string]any) { m["receivedAt"] = "2025-03-14T14:09:26.5350Z" }, "not written as"},
		{"payload array", func(m map[string]any) { m["payloadSnapshot"] = []any{1} }, "payloadSnapshot"},
		{"payload string", func(m map[string]any) { m["payloadSnapshot"] = "{}" }, "payloadSnapshot"},
		{"wrong type", func(m map[string]any) { m["type"] = "Note" }, "type"},
		{"unknown member", func(m map[string]any) { m["id"] = "https://x" }, "id: is not a member"},
		{"caseId a number", func(m map[string]any) { m["caseId"] = 7 }, "caseId"},
		{"negative term", func(m map[string]any) { m["term"] = -2 }, "term"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			tc.change(m)
			raw, _ := json.Marshal(m)
			_, err := Unmarshal(raw)
			if err == nil {
				t.Fatalf("Unmarshal(%s) succeeded", raw)
			}
			if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q: want ErrInvalidEntry mentioning %q", err, tc.why)
			}
		})
	}
	for _, raw := range []string{`[]`, `null`, `{"caseId":"a","caseId":"b"}`, `{`} {
		if _, err := Unmarshal([]byte(raw)); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("Unmarshal(%s) = %v, want ErrInvalidEntry", raw, err)
		}
	}
}

func TestSealAndMarshalValidate(t *testing.T) {
	e := Entry{CaseID: testCase, Disposition: Recorded, LogObjectID: "o", EventType: "x",
		PayloadSnapshot: json.RawMessage(`{}`), PrevLogHash: strings.Repeat("0", 64), ReceivedAt: "2025-01-01T00:00:00Z"}
	if _, err := Marshal(e); err == nil || !strings.Contains(err.Error(), "entryHash") {
		t.Errorf("Marshal of an unsealed entry: %v, want an entryHash error", err)
	}
	if err := e.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if _, err := Marshal(e); err != nil {
		t.Errorf("Marshal of a sealed entry: %v", err)
	}
	bad := e
	bad.PayloadSnapshot = json.RawMessage(`{"a":1,"a":2}`)
	if err := bad.Seal(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("Seal with a duplicate-key payload: %v", err)
	}
	bad = e
	bad.EventType = "\xff"
	if err := bad.Seal(); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("Seal with invalid UTF-8: %v", err)
	}
	if _, err := NewEntry(testCase, 0, "nothex", "o", "x", json.RawMessage(`{}`), time.Now()); err == nil {
		t.Error("NewEntry accepted a malformed prev hash")
	}
	if _, err := NewEntry(testCase, 0, e.PrevLogHash, "o", "x", json.RawMessage(`[1]`), time.Now()); err == nil {
		t.Error("NewEntry accepted a payload that is not an object")
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
