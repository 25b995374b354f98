package httpreq

import (
	"errors"
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

// TestLimitAndLogIndex reads a page's size and first log index, and
// refuses with 400 and the value what is out of bounds.
func TestLimitAndLogIndex(t *testing.T) {
	for _, tc := range []struct {
		query string
		limit int
		from  int64
		err   string
	}{
		{"", 20, 0, ""},
		{"limit=200&from=7", 200, 7, ""},
		{"limit=201", 0, 0, `limit "201" must be a number from 1 to 200`},
		{"limit=0", 0, 0, `limit "0" must be a number from 1 to 200`},
		{"from=-1", 0, 0, `from "-1" must be a log index (0 or more)`},
		{"from=x" + strings.Repeat("9", 400), 0, 0, "…\" must be a log index"},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		limit, lerr := Limit(q, 20, 200)
		from, ferr := LogIndex(q, "from")
		err = errors.Join(lerr, ferr)
		switch {
		case tc.err == "" && (err != nil || limit != tc.limit || from != tc.from):
			t.Errorf("%q: limit %d, from %d, %v; want %d and %d", tc.query, limit, from, err, tc.limit, tc.from)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v; want it refused saying %q", tc.query, err, tc.err)
		}
		for _, e := range []error{lerr, ferr} {
			if e != nil && problem.Status(e) != 400 {
				t.Errorf("%q: %v is a %d, want 400", tc.query, e, problem.Status(e))
			}
		}
	}
}
