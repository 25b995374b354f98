package actor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// SafeClientOptions configures NewSafeClient. The zero value is the
// production setting.
type SafeClientOptions struct {
	// AllowPrivate permits loopback, private and link-local peers. It is
	// for tests and local set-ups (--allow-private-peers); the unspecified
	// address, multicast and broadcast stay refused.
	AllowPrivate bool
	// Timeout bounds a whole request, redirects and body included.
	// Default 10s.
	Timeout time.Duration
	// MaxRedirects is the number of redirects followed; default 3, and a
	// negative value follows none (the 3xx response is returned as is).
	MaxRedirects int
	// MaxBody bounds every response body; reading past it fails with
	// ErrBodyTooLarge. Default 1 MiB.
	MaxBody int64
	// IdleConnsPerHost is how many idle connections to one host are kept
	// for reuse; default 2, net/http's. A client that sends to one host
	// from N goroutines at once needs N: past the kept ones, every request
	// that ends closes its connection and the next one dials again.
	IdleConnsPerHost int
	// RootCAs, when set, are the certificate authorities TLS peers are
	// verified against instead of the system's (a private CA of a test
	// network); nil means the system's.
	RootCAs *x509.CertPool
}

// ErrBodyTooLarge is returned when reading a response body that exceeds
// SafeClientOptions.MaxBody.
var ErrBodyTooLarge = errors.New("response body exceeds the size limit")

// ErrAddressRefused is wrapped by dial errors for addresses that are not
// global unicast.
var ErrAddressRefused = errors.New("address is not a public unicast address")

func (o SafeClientOptions) withDefaults() SafeClientOptions {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = 3
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	return o
}

// NewSafeClient returns an HTTP client for talking to peers that a remote
// party named: actor documents, keys, WebFinger. The address actually
// dialled is checked in net.Dialer.Control, after name resolution and for
// every connection (so DNS rebinding cannot slip past it), and refused
// unless it is global unicast (see CheckAddress). Environment proxies are
// not used. Redirects are limited, restricted to http and https, never
// downgrade https to http, and land on addresses checked the same way.
// Response bodies are bounded by MaxBody.
func NewSafeClient(opts SafeClientOptions) *http.Client {
	opts = opts.withDefaults()
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			return controlDial(network, address, opts.AllowPrivate)
		},
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           max(32, opts.IdleConnsPerHost),
		MaxIdleConnsPerHost:    opts.IdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  opts.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if opts.RootCAs != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport:     &limitTransport{next: transport, max: opts.MaxBody},
		Timeout:       opts.Timeout,
		CheckRedirect: checkRedirect(opts.MaxRedirects),
	}
}

// checkRedirect enforces the redirect policy of the safe client.
func checkRedirect(max int) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if max < 0 {
			return http.ErrUseLastResponse
		}
		if len(via) > max {
			return fmt.Errorf("stopped after %d redirects", max)
		}
		if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
			return fmt.Errorf("redirect to scheme %q refused: only http and https are followed", req.URL.Scheme)
		}
		if prev := via[len(via)-1]; prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
		}
		return nil
	}
}

// controlDial refuses to connect to an address that CheckAddress refuses.
func controlDial(network, address string, allowPrivate bool) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("dial %s %s: network refused", network, address)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if err := CheckAddress(ap.Addr(), allowPrivate); err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	return nil
}

// refusedV4 lists the IPv4 ranges that are not global unicast.
var refusedV4 = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// refusedV6 lists the ranges inside 2000::/3 that are not plain global
// unicast. Everything outside 2000::/3 (::, ::1, fc00::/7, fe80::/10,
// ff00::/8, 64:ff9b::/96 NAT64, IPv4-compatible ...) is refused wholesale.
var refusedV6 = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
}

var globalV6 = netip.MustParsePrefix("2000::/3")

// CheckAddress returns nil when ip may be dialled, and otherwise an error
// wrapping ErrAddressRefused that says which kind of address it is. Only
// global unicast addresses are allowed; IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they carry, and NAT64, 6to4 and Teredo
// addresses (which tunnel to an IPv4 address) are refused. With
// allowPrivate every address except the unspecified, multicast and
// broadcast ones is allowed.
func CheckAddress(ip netip.Addr, allowPrivate bool) error {
	if !ip.IsValid() {
		return fmt.Errorf("invalid address: %w", ErrAddressRefused)
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsUnspecified() {
		return fmt.Errorf("%s is the unspecified address: %w", ip, ErrAddressRefused)
	}
	if ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("%s is a multicast or broadcast address: %w", ip, ErrAddressRefused)
	}
	if allowPrivate {
		return nil
	}
	if ip.Is4() {
		for _, r := range refusedV4 {
			if r.prefix.Contains(ip) {
				return fmt.Errorf("%s is a %s address (%s): %w", ip, r.what, r.prefix, ErrAddressRefused)
			}
		}
		return nil
	}
	if !globalV6.Contains(ip) {
		what := "non-global"
		switch {
		case ip.IsLoopback():
			what = "loopback"
		case ip.IsLinkLocalUnicast():
			what = "link-local"
		case ip.IsPrivate():
			what = "unique local"
		case netip.MustParsePrefix("64:ff9b::/96").Contains(ip), netip.MustParsePrefix("64:ff9b:1::/48").Contains(ip):
			what = "NAT64"
		}
		return fmt.Errorf("%s is a %s IPv6 address (outside 2000::/3): %w", ip, what, ErrAddressRefused)
	}
	for _, r := range refusedV6 {
		if r.prefix.Contains(ip) {
			return fmt.Errorf("%s is a %s address (%s): %w", ip, r.what, r.prefix, ErrAddressRefused)
		}
	}
	return nil
}

// limitTransport bounds every response body.
type limitTransport struct {
	next http.RoundTripper
	max  int64
}

// bodyLimitKey is the context key of a request's own body bound (see
// withBodyLimit).
type bodyLimitKey struct{}

// withBodyLimit returns ctx carrying limit as the body bound of the
// requests made with it, in place of SafeClientOptions.MaxBody: a caller
// that reads more (or less) than the client's bound states its own.
func withBodyLimit(ctx context.Context, limit int64) context.Context {
	return context.WithValue(ctx, bodyLimitKey{}, limit)
}

// RoundTrip refuses responses that announce a body over the limit (the
// request's own, when its context carries one) and wraps the body so that
// reading past the limit fails.
func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	limit := t.max
	if l, ok := req.Context().Value(bodyLimitKey{}).(int64); ok && l > 0 {
		limit = l
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, fmt.Errorf("%s announces %d bytes: %w (%d bytes)", req.URL.Redacted(), resp.ContentLength, ErrBodyTooLarge, limit)
	}
	resp.Body = &limitedBody{body: resp.Body, left: limit}
	return resp, nil
}

// limitedBody fails with ErrBodyTooLarge instead of silently truncating.
type limitedBody struct {
	body io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - int(-b.left), ErrBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }

// readBody reads a whole response body; the safe client has bounded it.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", resp.Request.URL.Redacted(), err)
	}
	return b, nil
}
