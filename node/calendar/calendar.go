// Package calendar serves the node's embargo calendars: an iCalendar (RFC
// 5545) feed of the embargoes of the cases whose dates are ahead or recent
// (/calendar.ics, FeedHistory), one per case (/api/cases/{id}/embargo.ics),
// and the feed token that lets a calendar client read them.
//
// Each case's embargo is one VEVENT at the instant it ends, in UTC, with a
// UID that stays the same across revisions and a SEQUENCE that counts
// them, so a subscribed calendar moves the event instead of adding one. An open proposal is a second, TENTATIVE event related to the
// first. The mapping follows the Vultron iCalendar note (vultron-protocol.md
// §8) with the changes of cvd-landscape.md §3.2:
//
//   - the note's zero-length event (DTSTART = DTEND) is not valid RFC 5545;
//     the event has a DTSTART and no DTEND, which RFC 5545 §3.6.1 defines as
//     an event that takes up the instant of DTSTART;
//   - STATUS is TENTATIVE while proposed, CONFIRMED while in force or once it
//     ended at its date, CANCELLED when it ended early (terminated, or torn
//     down by publication before its date);
//   - no vulnerability detail: SUMMARY carries the case's short id, and the
//     report's name and content never appear;
//   - the participants are ATTENDEEs whose PARTSTAT is their embargo consent,
//     without RSVP: consent is given on the node, not by a calendar reply;
//   - an embargo in force has reminders two weeks, a week and a day before
//     its end (cvd-landscape.md §3.2), each only while its moment is ahead;
//   - a rejected proposal or revision leaves the feed instead of being sent
//     as CANCELLED (the note's "new → CANCELLED" on reject): the feeds are
//     subscribed snapshots (METHOD:PUBLISH), from which a client drops an
//     event that is no longer there, and the case keeps no record of a
//     proposal once it is answered, so there is no UID to cancel.
//
// Calendar clients cannot send an Authorization header, so the feeds also
// take a feed token in the URL. It reads the feeds and nothing else. The node
// derives it (HMAC) from its API token and a generation kept in the store:
// `vultron calendar token --rotate` bumps the generation, which retires the
// old feed URLs without touching the API token, and the token itself is
// never stored. It also changes when the API token changes, and when a
// user's access ends (removed, disabled, its role withdrawn by the
// identity provider; package accounts): every user who reads may have
// copied the feed URL.
//
// A user's token with the calendar scope (vultron token create --scope
// calendar) reads the feeds too, in the header or in the URL, and is
// revoked on its own.
//
// The package reads cases from the store and writes nothing but the feed
// token's generation; it never shows a report's name or content. The node
// routes to its handlers (node/routes.go) behind its guard, which checks
// the feed token (FeedToken) or a token's calendar scope before a feed is
// served, a token that reads before Links, and an admin's before
// RotateToken.
package calendar

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Config is what the feeds need from the node.
type Config struct {
	Store *store.DB
	// PublicURL is the node's base URL, which the feed URLs and the
	// events' links start with; Host is its host[:port], which names the
	// feed and ends the events' UIDs.
	PublicURL string
	Host      string
	// Version is the node's version, in the calendar's PRODID.
	Version string
	// FeedKey is the secret the feed tokens are derived from: a hash of
	// the node's API token, so that a new API token retires the feed URLs.
	FeedKey []byte
	Now     func() time.Time
	Logger  zerolog.Logger
}

// Feeds serves the embargo calendars.
type Feeds struct {
	cfg Config
}

// New returns the feeds of cfg.
func New(cfg Config) (*Feeds, error) {
	if cfg.Store == nil || cfg.Now == nil || len(cfg.FeedKey) == 0 {
		return nil, errors.New("calendar: a store, a feed key and a clock are required")
	}
	return &Feeds{cfg: cfg}, nil
}

// feedTokenContext separates the feed token from anything else derived from
// the API token.
const feedTokenContext = "vultron calendar feed v1"

// URL returns the URL of the feed of every case with the current feed
// token, for pages that link the feed. When the store cannot be read the
// URL carries no token (the link then answers 401 instead of the page
// failing).
func (f *Feeds) URL(ctx context.Context) string {
	tok, err := f.currentToken(ctx)
	if err != nil {
		f.cfg.Logger.Warn().Err(err).Msg("read the calendar feed token generation")
		tok = ""
	}
	return f.cfg.PublicURL + "/calendar.ics?token=" + url.QueryEscape(tok)
}

// tokenOf returns the node's calendar feed token of generation gen.
func (f *Feeds) tokenOf(gen uint64) string {
	m := hmac.New(sha256.New, f.cfg.FeedKey)
	m.Write([]byte(feedTokenContext))
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	m.Write(g[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// currentToken returns the feed token of the generation in the store.
func (f *Feeds) currentToken(ctx context.Context) (string, error) {
	var gen uint64
	err := f.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		var err error
		gen, err = tx.FeedTokenGeneration()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("calendar feed token: %w", err)
	}
	return f.tokenOf(gen), nil
}

// FeedToken reports whether tok is the current feed token. The node's
// guard of the feeds' routes asks it for a ?token= (node/authz.go).
func (f *Feeds) FeedToken(ctx context.Context, tok string) (bool, error) {
	if tok == "" {
		return false, nil
	}
	want, err := f.currentToken(ctx)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1, nil
}

// writeLinks writes the feed URLs with the feed token tok.
func (f *Feeds) writeLinks(w http.ResponseWriter, tok string) {
	q := "?token=" + url.QueryEscape(tok)
	problem.WriteJSON(w, http.StatusOK, api.CalendarLinks{
		Calendar:     f.cfg.PublicURL + "/calendar.ics" + q,
		CaseTemplate: f.cfg.PublicURL + "/api/cases/{id}/embargo.ics" + q,
	})
}

// Links answers GET /api/calendar: the feed URLs with the feed token, for
// a person to paste into a calendar client. The route needs a token that
// reads.
func (f *Feeds) Links(w http.ResponseWriter, r *http.Request) {
	tok, err := f.currentToken(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	f.writeLinks(w, tok)
}

// RotateToken answers POST /api/calendar/token: a new feed token, which
// retires the old one, and the feed URLs with it. The route needs an
// admin's token.
func (f *Feeds) RotateToken(w http.ResponseWriter, r *http.Request) {
	gen, err := f.cfg.Store.RotateFeedToken(r.Context(), accounts.LabelOf(r.Context()))
	if err != nil {
		problem.Write(w, err)
		return
	}
	f.writeLinks(w, f.tokenOf(gen))
}

// FeedHistory is how long after its latest date (an embargo's end, a
// proposed end, an advisory's publication) a case stays in the node's
// feed; a subscribed calendar drops its events afterwards, as it drops
// any event a feed no longer has. The feed of the case keeps them.
const FeedHistory = 90 * 24 * time.Hour

// maxFeedCases bounds the cases the node's feed shows, the earliest dates
// first.
const maxFeedCases = 5000

// All answers GET /calendar.ics: the embargoes and publications of the
// cases whose latest date is within FeedHistory or ahead, read from the
// cases' index by date (cases.DatedCases), at most maxFeedCases.
func (f *Feeds) All(w http.ResponseWriter, r *http.Request) {
	var all []*cases.Case
	err := f.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		all, err = cases.DatedCases(tx, f.cfg.Now().Add(-FeedHistory), maxFeedCases)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	f.write(w, "Embargoes on "+f.cfg.Host, all)
}

// Case answers GET /api/cases/{id}/embargo.ics.
func (f *Feeds) Case(w http.ResponseWriter, r *http.Request) {
	id, err := httpreq.CaseID(r, f.cfg.Store)
	if err != nil {
		problem.Write(w, err)
		return
	}
	c, err := httpreq.LoadCase(r.Context(), f.cfg.Store, id)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if c == nil {
		problem.Write(w, problem.NotFound("no case %s on this node", id))
		return
	}
	f.write(w, "Embargo of case "+cases.ShortID(c.ID), []*cases.Case{c})
}
