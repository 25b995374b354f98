package httpreq

import (
	"net/url"
	"strings"
	"testing"

	"github.com/openvultron/vultron/problem"
)

// TestIntParam reads a parameter within its bounds, takes the default
// when it is absent, and refuses with 400 and its name what is not a
// whole number in bounds.
func TestIntParam(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
		err   string
	}{
		{"", 7, ""},
		{"limit=1", 1, ""},
		{"limit=100", 100, ""},
		{"limit=0", 0, `limit must be a whole number from 1 to 100, not "0"`},
		{"limit=101", 0, `not "101"`},
		{"limit=ten", 0, `not "ten"`},
		{"limit=-1", 0, `not "-1"`},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := IntParam(q, "limit", 7, 1, 100)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.query, got, err, tc.want)
		case tc.err != "" && (err == nil || problem.Status(err) != 400 || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %d, %v; want 400 saying %q", tc.query, got, err, tc.err)
		}
	}
}
