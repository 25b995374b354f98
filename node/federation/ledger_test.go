package federation

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
)

// answering is a SignedFetcher that answers every fetch with status and
// body.
type answering struct {
	status int
	body   string
}

func (a answering) FetchAs(context.Context, string, string, *rsa.PrivateKey, int64) (int, []byte, error) {
	return a.status, []byte(a.body), nil
}

// TestFetchLedgerTellsARefusal: the answers by which a Case Actor's node
// refuses the signer its ledger (404, which it gives alike for a case it
// does not host and a signer that may not read it, and 403 from a node
// that still tells them apart) are cases.ErrLedgerRefused, which the
// syncer counts; other failures are not.
func TestFetchLedgerTellsARefusal(t *testing.T) {
	const caseID = "https://v.example/cases/c1"
	for _, tc := range []struct {
		status  int
		refused bool
	}{
		{http.StatusNotFound, true},
		{http.StatusForbidden, true},
		{http.StatusUnauthorized, false},
		{http.StatusTooManyRequests, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			f := LedgerFetcher{
				Local: func(context.Context, string) (actor.Local, bool, error) {
					return actor.Local{Name: "finder", KeyID: "https://f.example/actors/finder#main-key"}, true, nil
				},
				CheckURL: func(string) error { return nil },
				Fetcher:  answering{status: tc.status, body: `{"error":"this node hosts no case ` + caseID + `"}`},
			}
			_, err := f.FetchLedger(context.Background(), "finder", caseID, 3, "", 10)
			if err == nil {
				t.Fatal("a refused fetch returned no error")
			}
			if got := errors.Is(err, cases.ErrLedgerRefused); got != tc.refused {
				t.Errorf("errors.Is(%q, ErrLedgerRefused) = %t, want %t", err, got, tc.refused)
			}
			if !strings.Contains(err.Error(), "this node hosts no case") {
				t.Errorf("error %q does not carry the node's sentence", err)
			}
		})
	}
}
