// Package problem classifies errors into the HTTP status and the one-sentence
// JSON body that a client of the node sees.
//
// Pipelines return a *Error for every refusal they decide on, wrapping the
// underlying cause. The single place that answers an HTTP request calls
// Write, which sends {"error": "<sentence>"} with the error's status; any
// other error becomes a 500 whose detail stays in the log. A client reads
// the sentence back with ReadBody.
//
// Text that a peer or a user supplied is quoted in a sentence or a log line
// through Clip, which shortens it without splitting a UTF-8 character, or
// Printable, which also takes out what could break the line; the module
// has no other clipper.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Error is a refusal with the HTTP status that describes it and a sentence
// that is safe to show to the peer or user who caused it.
type Error struct {
	Status int    // HTTP status code, 4xx or 5xx
	Msg    string // what was wrong, one sentence without a trailing period
	// RetryAfter, when positive, is sent as the Retry-After header (for 429
	// and 503 answers).
	RetryAfter time.Duration
	Err        error // the cause, for the log; may be nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with the given status and message.
func New(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given status whose message is msg and
// whose cause is err.
func Wrap(status int, err error, msg string) *Error {
	return &Error{Status: status, Msg: msg, Err: err}
}

// BadRequest, Unauthorized and the other helpers return an *Error with the
// status their name says.
func BadRequest(format string, args ...any) *Error {
	return New(http.StatusBadRequest, format, args...)
}

// Unauthorized returns a 401 refusal.
func Unauthorized(format string, args ...any) *Error {
	return New(http.StatusUnauthorized, format, args...)
}

// Forbidden returns a 403 refusal.
func Forbidden(format string, args ...any) *Error {
	return New(http.StatusForbidden, format, args...)
}

// NotFound returns a 404 refusal.
func NotFound(format string, args ...any) *Error {
	return New(http.StatusNotFound, format, args...)
}

// Conflict returns a 409 refusal.
func Conflict(format string, args ...any) *Error {
	return New(http.StatusConflict, format, args...)
}

// TooLarge returns a 413 refusal.
func TooLarge(format string, args ...any) *Error {
	return New(http.StatusRequestEntityTooLarge, format, args...)
}

// Unprocessable returns a 422 refusal.
func Unprocessable(format string, args ...any) *Error {
	return New(http.StatusUnprocessableEntity, format, args...)
}

// Unavailable is implemented by an error of a part of the node that cannot
// serve now for a reason that passes (package store's UnavailableError:
// a full disk, a database that is read-only or out of reach). Such an
// error is answered 507 when full is true and 503 otherwise, with the
// error's sentence and Retry-After, rather than as an internal error: the
// client is to try again, a peer's delivery is retried, not given up.
type Unavailable interface {
	error
	Unavailable() (sentence string, full bool, retryAfter time.Duration)
}

// refusal returns the *Error that answers err: the first *Error in its
// chain, unless that is a 500 (or there is none) and an Unavailable is in
// the chain, which then says what the client sees; nil when there is
// neither.
func refusal(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) && pe.Status != http.StatusInternalServerError {
		return pe
	}
	var u Unavailable
	if errors.As(err, &u) {
		sentence, full, retryAfter := u.Unavailable()
		status := http.StatusServiceUnavailable
		if full {
			status = http.StatusInsufficientStorage
		}
		return &Error{Status: status, Msg: sentence, RetryAfter: retryAfter, Err: err}
	}
	return pe
}

// Status returns the HTTP status for err: the status of the first *Error in
// its chain, 503 or 507 for an Unavailable, or 500.
func Status(err error) int {
	if pe := refusal(err); pe != nil {
		return pe.Status
	}
	return http.StatusInternalServerError
}

// Message returns the sentence a client may see for err. Errors that are not
// an *Error or an Unavailable are internal and reveal nothing.
func Message(err error) string {
	if pe := refusal(err); pe != nil {
		return pe.Msg
	}
	return "internal error; the node's log has the details"
}

// RetryAfter returns how long the client of a refusal is told to wait
// before it tries again (the Retry-After of Write), or 0.
func RetryAfter(err error) time.Duration {
	if pe := refusal(err); pe != nil {
		return pe.RetryAfter
	}
	return 0
}

// SetRetryAfter sets the Retry-After header of the answer to err, in whole
// seconds rounded up, when it has one (RetryAfter).
func SetRetryAfter(h http.Header, err error) {
	if ra := RetryAfter(err); ra > 0 {
		h.Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
	}
}

// Body is the JSON body of every refusal: {"error": "<sentence>"}.
type Body struct {
	Error string `json:"error"`
}

// Write answers a request with err's status and the JSON body
// {"error": "..."}. A ResponseWriter with a NoteError(error) method (a
// server's record of its answers, which tells a refusal from its own
// failure) is given err first.
func Write(w http.ResponseWriter, err error) {
	if n, ok := w.(interface{ NoteError(error) }); ok {
		n.NoteError(err)
	}
	SetRetryAfter(w.Header(), err)
	WriteJSON(w, Status(err), Body{Error: Message(err)})
}

// ReadBody returns the sentence of a refusal's JSON body, as Write sends
// it, and false when body is not one.
func ReadBody(body []byte) (string, bool) {
	var b Body
	if json.Unmarshal(body, &b) != nil || b.Error == "" {
		return "", false
	}
	return b.Error, true
}

// WriteJSON answers a request with status and v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	WriteTyped(w, status, "application/json", v)
}

// WriteTyped answers a request with status and v encoded as JSON, sent with
// the given media type (application/activity+json, application/jrd+json ...).
func WriteTyped(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		contentType = "application/json"
		body = []byte(`{"error":"internal error; the node's log has the details"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Clip shortens text a peer or a user supplied to at most n bytes, cut at
// a character boundary and marked with an ellipsis, so that quoting it in
// an error or a log line neither floods it nor splits a UTF-8 character.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Printable makes text a peer supplied safe to quote in an error or a log
// line: invalid UTF-8 becomes "?", each control character a space, the
// space around it is trimmed, and the result is clipped to n bytes as Clip
// clips.
func Printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	return Clip(strings.TrimSpace(s), n)
}
