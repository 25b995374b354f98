package vocab

import (
	"encoding/json"
	"testing"
)

func TestRefID(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{`"https://a.example/actors/x"`, "https://a.example/actors/x"},
		{`{"type":"Person","id":"https://a.example/actors/x"}`, "https://a.example/actors/x"},
		{`{"type":"Note"}`, ""},
		{`["https://a.example/actors/x"]`, ""},
		{`42`, ""},
		{``, ""},
	} {
		if got := RefID(json.RawMessage(tc.raw)); got != tc.want {
			t.Errorf("RefID(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
