package federation

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Pages of a hosted case's ledger, as replicas fetch them.
const (
	defaultLedgerPage = 200
	// ledgerPageBytes bounds the entries of one page (a page holds at
	// least one entry, whatever its size).
	ledgerPageBytes = 4 << 20
	// maxLedgerResponse bounds what this node reads of a page it fetches:
	// the bound of the entries plus one entry at the largest an inbox
	// takes, with room for the page's own members.
	maxLedgerResponse = ledgerPageBytes + 2<<20
)

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CaseLedger serves GET {public}/cases/ID/ledger?from=N&prev=H&limit=M:
// a page of the ledger of a case this node hosts, to a signed GET from
// one of its participants (whose replica fetches what it lacks) or to the
// node's API token; anyone else is answered as for a case this node does
// not host (noCase). prev, when given, must be the hash of entry N-1 (the
// genesis hash for N = 0): when it is not, the asker's ledger differs from
// this one, and the answer is 409.
func (e *Endpoints) CaseLedger(w http.ResponseWriter, r *http.Request) {
	id := e.cfg.PublicURL + "/cases/" + mux.Vars(r)["cid"]
	q := r.URL.Query()
	from, err := httpreq.LogIndex(q, "from")
	if err != nil {
		problem.Write(w, err)
		return
	}
	limit, err := httpreq.IntParam(q, "limit", defaultLedgerPage, 1, cases.MaxLedgerPage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	prev := q.Get("prev")
	if prev != "" && !hashPattern.MatchString(prev) {
		problem.Write(w, problem.BadRequest("prev %q must be an entry hash: 64 lower-case hexadecimal digits", problem.Clip(prev, 300)))
		return
	}
	signer, ok := e.signer(w, r)
	if !ok {
		return
	}
	if signer != nil {
		c, err := httpreq.LoadCase(r.Context(), e.cfg.Store, id)
		if err != nil {
			problem.Write(w, err)
			return
		}
		if c != nil && !c.CanRead(signer.Owner) {
			e.cfg.Withheld(r, problem.Forbidden("%s is not a participant of %s", signer.Owner, id))
			problem.Write(w, noCase(id))
			return
		}
	}
	var page cases.LedgerPage
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, id)
		if err != nil {
			return err
		}
		if c == nil || !cases.Hosted(tx, id) {
			return noCase(id)
		}
		page, err = cases.ReadLedgerPage(tx, c, from, prev, limit, ledgerPageBytes)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	self := pageURL(id, from, prev, limit)
	next := ""
	if end := from + int64(len(page.Entries)); end < page.Length && len(page.Entries) > 0 {
		next = pageURL(id, end, page.Entries[len(page.Entries)-1].EntryHash, limit)
	}
	body, err := cases.EncodeLedgerPage(id, self, next, from, page)
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(body)
}

// pageURL is the URL of a page of the ledger of case caseID.
func pageURL(caseID string, from int64, prev string, limit int) string {
	q := url.Values{}
	q.Set("from", strconv.FormatInt(from, 10))
	q.Set("limit", strconv.Itoa(limit))
	if prev != "" {
		q.Set("prev", prev)
	}
	return caseID + "/ledger?" + q.Encode()
}

// SignedFetcher makes a GET signed as a local actor and reads at most
// limit bytes of the answer (*actor.Fetcher).
type SignedFetcher interface {
	FetchAs(ctx context.Context, rawURL, keyID string, key *rsa.PrivateKey, limit int64) (int, []byte, error)
}

// LedgerFetcher fetches pages of Case Actors' ledgers for the replicas of
// this node, signed as the local actor that takes part in the case.
type LedgerFetcher struct {
	// Local returns the local actor that signs a fetch (see Config.Local).
	Local func(ctx context.Context, name string) (actor.Local, bool, error)
	// CheckURL refuses a URL the node does not federate with
	// (policy.Policy.CheckURL).
	CheckURL func(raw string) error
	Fetcher  SignedFetcher
}

// FetchLedger implements cases.LedgerFetcher.
func (f LedgerFetcher) FetchLedger(ctx context.Context, signer, caseID string, from int64, prev string, limit int) (cases.LedgerPage, error) {
	l, ok, err := f.Local(ctx, signer)
	if err != nil {
		return cases.LedgerPage{}, fmt.Errorf("the local actor %q to sign the fetch of the ledger of %s: %w", signer, caseID, err)
	}
	if !ok {
		return cases.LedgerPage{}, fmt.Errorf("no local actor %q to sign the fetch of the ledger of %s", signer, caseID)
	}
	u := pageURL(caseID, from, prev, limit)
	if err := f.CheckURL(u); err != nil {
		return cases.LedgerPage{}, fmt.Errorf("fetch the ledger of %s: %w", caseID, err)
	}
	status, body, err := f.Fetcher.FetchAs(ctx, u, l.KeyID, l.Key, maxLedgerResponse)
	if err != nil {
		return cases.LedgerPage{}, err
	}
	switch status {
	case http.StatusOK:
		return cases.DecodeLedgerPage(body, caseID, from)
	case cases.HTTPStatusDiffers:
		return cases.LedgerPage{}, fmt.Errorf("%w: %s", cases.ErrLedgerDiffers, errorText(body))
	case http.StatusNotFound, http.StatusForbidden:
		// A node answers 404 alike for a case it does not host and for a
		// signer that may not read it (noCase); an older one answers the
		// latter 403.
		return cases.LedgerPage{}, fmt.Errorf("the Case Actor's node answered %d: %s: %w", status, errorText(body), cases.ErrLedgerRefused)
	}
	return cases.LedgerPage{}, fmt.Errorf("the Case Actor's node answered %d: %s", status, errorText(body))
}

// errorText is the sentence of a JSON error body, or the start of the body.
func errorText(body []byte) string {
	if msg, ok := problem.ReadBody(body); ok {
		return problem.Clip(msg, 300)
	}
	return problem.Clip(strings.TrimSpace(string(body)), 300)
}
