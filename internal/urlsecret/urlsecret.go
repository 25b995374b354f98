// Package urlsecret names a URL the node was configured with (a webhook, a
// policy's notification, an intelligence feed) as the node writes it in
// logs, errors, audit records and lists: without the credentials such a
// URL may carry in its password or its query. It is the one place that
// decides what of such a URL is shown; pure.
package urlsecret

import (
	"errors"
	"net/url"
	"strings"
)

// Mark is what stands in for a URL's password and query where it is shown.
const Mark = "xxxxx"

// Shown returns raw with its password and its query, either of which may
// carry a receiver's credential (an API key, a token), each replaced by
// Mark, as is a user name given without a password, and without its
// fragment. A raw URL that does not parse is named
// as such, not repeated.
func Shown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = Mark, false
	}
	u.Fragment, u.RawFragment = "", ""
	if u.User != nil {
		if _, ok := u.User.Password(); !ok {
			// A user name alone is how some services take a token.
			u.User = url.User(Mark)
		}
	}
	return u.Redacted()
}

// HideIn returns err, of a request to u, with u, whole or redacted as
// net/http names it, written as Shown names it: the HTTP client's errors
// repeat the whole URL, query and all. The error still unwraps to what
// failed (a timeout, a refused connection).
func HideIn(err error, u *url.URL) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	shown := Shown(u.String())
	msg := err.Error()
	for _, s := range []string{u.String(), u.Redacted()} {
		msg = strings.ReplaceAll(msg, s, shown)
	}
	return &hiddenError{msg: msg, err: err}
}

// hiddenError is an error whose message no longer names a URL's secrets.
type hiddenError struct {
	msg string
	err error
}

func (e *hiddenError) Error() string { return e.msg }
func (e *hiddenError) Unwrap() error { return e.err }
