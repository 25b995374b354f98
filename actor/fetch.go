package actor

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/openvultron/vultron/problem"
)

// FetcherOptions configures a Fetcher.
type FetcherOptions struct {
	// Client configures the SSRF-safe client used for every request.
	Client SafeClientOptions
	// KeyID and Key sign the GETs of ActivityPub documents (peers may
	// require signed fetches); usually the node's service actor. Required.
	KeyID string
	Key   *rsa.PrivateKey
	// Signer, when set, is asked for the key id and key at every fetch
	// instead of KeyID and Key, so that a rotated key signs at once.
	Signer func() (keyID string, key *rsa.PrivateKey)
	// Now is the clock used for Date; default time.Now.
	Now func() time.Time
	// PlainHTTP makes ResolveWebFinger use http:// instead of https://;
	// for tests and local set-ups only.
	PlainHTTP bool
}

// Fetcher dereferences remote documents through the SSRF-safe client. It
// is safe for concurrent use.
type Fetcher struct {
	follow    *http.Client // follows redirects (WebFinger)
	strict    *http.Client // never follows redirects (canonical ids)
	signer    func() (string, *rsa.PrivateKey)
	now       func() time.Time
	plainHTTP bool
}

// NewFetcher returns a Fetcher.
func NewFetcher(opts FetcherOptions) (*Fetcher, error) {
	if opts.Signer == nil {
		if opts.Key == nil || opts.KeyID == "" {
			return nil, errors.New("fetcher: a key id and key (or a signer) to sign fetches with are required")
		}
		keyID, key := opts.KeyID, opts.Key
		opts.Signer = func() (string, *rsa.PrivateKey) { return keyID, key }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	strictOpts := opts.Client
	strictOpts.MaxRedirects = -1
	return &Fetcher{
		follow:    NewSafeClient(opts.Client),
		strict:    NewSafeClient(strictOpts),
		signer:    opts.Signer,
		now:       opts.Now,
		plainHTTP: opts.PlainHTTP,
	}, nil
}

// FetchDocument fetches the ActivityPub document whose id is rawURL with a
// signed GET. Canonical ids are not redirected: a 3xx answer is refused,
// as is any status but 200, a Content-Type that is not an ActivityPub
// type, a body that is not a JSON object, and a document whose "id" is not
// exactly rawURL.
func (f *Fetcher) FetchDocument(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := parseFetchURL(rawURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", ContentType+", "+LDContentType)
	keyID, key := f.signer()
	if err := SignRequest(req, nil, keyID, key, f.now()); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	resp, err := f.strict.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &DocumentError{URL: rawURL, Reason: fmt.Sprintf("redirected (%d) to %q; canonical ids must not redirect", resp.StatusCode, problem.Printable(resp.Header.Get("Location"), maxQuoted))}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: rawURL, Code: resp.StatusCode}
	}
	if ct := resp.Header.Get("Content-Type"); !IsActivityPubContentType(ct) {
		return nil, &DocumentError{URL: rawURL, Reason: fmt.Sprintf("Content-Type %q is not an ActivityPub type", problem.Printable(ct, maxQuoted))}
	}
	body, err := readBody(resp)
	if err != nil {
		return nil, err
	}
	var doc struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &DocumentError{URL: rawURL, Reason: "body is not a JSON object", Err: err}
	}
	if doc.ID != rawURL {
		return nil, &DocumentError{URL: rawURL, Reason: fmt.Sprintf("document id %q is not the requested URL", problem.Printable(doc.ID, maxQuoted))}
	}
	return body, nil
}

// FetchAs GETs rawURL signed with keyID and key (a local actor's, so that
// the server can tell which participant asks), never following redirects,
// and returns the response's status and at most limit bytes of its body;
// a longer body is an error. limit, not the client's MaxBody, bounds the
// body. Unlike FetchDocument it leaves the meaning of the status and the
// body to the caller.
func (f *Fetcher) FetchAs(ctx context.Context, rawURL, keyID string, key *rsa.PrivateKey, limit int64) (int, []byte, error) {
	u, err := parseFetchURL(rawURL)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(withBodyLimit(ctx, limit), http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", ContentType+", "+LDContentType+", application/json")
	if err := SignRequest(req, nil, keyID, key, f.now()); err != nil {
		return 0, nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	resp, err := f.strict.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("fetch %s: read the response: %w", rawURL, err)
	}
	if int64(len(body)) > limit {
		return resp.StatusCode, nil, fmt.Errorf("fetch %s: the response is larger than %d bytes", rawURL, limit)
	}
	return resp.StatusCode, body, nil
}

// StatusError is the failure of a fetch whose answer's status was not 200.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("fetch %s: status %d", e.URL, e.Code) }

// DocumentError is the failure of a fetch whose answer was not the
// document asked for: a redirect, a Content-Type that is not an
// ActivityPub type, a body that is no JSON object, a document with another
// id, or one that is not what the caller needs. Reason says which, quoting
// only what the peer answered; Err, when set, is the parser's error.
type DocumentError struct {
	URL    string
	Reason string
	Err    error
}

func (e *DocumentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("fetch %s: %s: %v", e.URL, e.Reason, e.Err)
	}
	return fmt.Sprintf("fetch %s: %s", e.URL, e.Reason)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// FetchFailure says why a fetch failed, in words for the person who named
// the document: "host not found", "its server refused the connection",
// "its server answered 404 Not Found", a DocumentError's reason, a
// problem.Error's sentence (a policy's refusal). It never quotes the
// resolver, the addresses dialled or the error chain, which the node's
// log keeps; a failure it does not know is "it could not be fetched".
func FetchFailure(err error) string {
	var (
		pe     *problem.Error
		se     *StatusError
		de     *DocumentError
		dnsErr *net.DNSError
		netErr net.Error
		urlErr *url.Error
	)
	switch {
	case errors.As(err, &pe):
		return pe.Msg
	case errors.As(err, &se):
		if t := http.StatusText(se.Code); t != "" {
			return fmt.Sprintf("its server answered %d %s", se.Code, t)
		}
		return fmt.Sprintf("its server answered %d", se.Code)
	case errors.As(err, &de):
		return de.Reason
	case errors.Is(err, ErrAddressRefused):
		return "its address is not one this node fetches from"
	case errors.Is(err, ErrBodyTooLarge):
		return "its document is larger than this node reads"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "host not found"
		}
		return "its host name could not be looked up"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "its server did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "its server refused the connection"
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return "its server could not be reached"
	}
	return "it could not be fetched"
}

// Transient reports whether a fetch failed for a reason that may pass by
// itself, so that whoever depends on it should try again later rather than
// give up: the network (no connection, a reset, a timeout, a connection
// closed without an answer), or an answer of 408, 413, 425, 429 or 5xx (a
// server or a proxy in front of it that is down, busy or failing). An
// address this node refuses to fetch (ErrAddressRefused) is not transient,
// nor is any other answer (404, 410: there is no such document).
func Transient(err error) bool {
	if err == nil || errors.Is(err, ErrAddressRefused) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch c := se.Code; {
		case c == http.StatusRequestTimeout, c == http.StatusRequestEntityTooLarge, c == http.StatusTooEarly,
			c == http.StatusTooManyRequests, c >= 500:
			return true
		}
		return false
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return false // a file of this node's, whose Errno is a net.Error too
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// parseFetchURL accepts absolute http and https URLs without user info.
func parseFetchURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", problem.Printable(raw, maxQuoted), err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("URL %q: only http and https are fetched", problem.Printable(raw, maxQuoted))
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("URL %q: want an absolute URL with a host and no user info", problem.Printable(raw, maxQuoted))
	}
	return u, nil
}
