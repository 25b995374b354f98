package actor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/openvultron/vultron/problem"
)

// TestFetchFailure says why a fetch failed in words for the person who
// named the document, and never quotes the resolver, the addresses
// dialled or Go's error chain.
func TestFetchFailure(t *testing.T) {
	const raw = "http://nonexistent.invalid/actors/x"
	wrap := func(err error) error {
		return fmt.Errorf("fetch %s: %w", raw, &url.Error{Op: "Get", URL: raw, Err: err})
	}
	dial := func(err error) error { return wrap(&net.OpError{Op: "dial", Net: "tcp", Err: err}) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{dial(&net.DNSError{Err: "no such host", Name: "nonexistent.invalid", Server: "10.255.255.53:53", IsNotFound: true}), "host not found"},
		{dial(&net.DNSError{Err: "server misbehaving", Name: "nonexistent.invalid", Server: "10.255.255.53:53", IsTemporary: true}), "its host name could not be looked up"},
		{dial(&net.DNSError{Err: "i/o timeout", Name: "nonexistent.invalid", Server: "10.255.255.53:53", IsTimeout: true}), "its host name could not be looked up"},
		{dial(&net.OpError{Op: "connect", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 80}, Err: syscall.ECONNREFUSED}), "its server refused the connection"},
		{dial(fmt.Errorf("dial 10.1.2.3:80: 10.1.2.3 is a private address: %w", ErrAddressRefused)), "its address is not one this node fetches from"},
		{wrap(context.DeadlineExceeded), "its server did not answer in time"},
		{&StatusError{URL: raw, Code: 404}, "its server answered 404 Not Found"},
		{wrap(ErrBodyTooLarge), "its document is larger than this node reads"},
		{&DocumentError{URL: raw, Reason: `Content-Type "text/html" is not an ActivityPub type`}, `Content-Type "text/html" is not an ActivityPub type`},
		{problem.Forbidden("host nonexistent.invalid is not on this node's federation allow-list"), "host nonexistent.invalid is not on this node's federation allow-list"},
		{wrap(errors.New("tls: internal detail")), "its server could not be reached"},
		{errors.New("something internal"), "it could not be fetched"},
	} {
		got := FetchFailure(tc.err)
		if got != tc.want {
			t.Errorf("FetchFailure(%v) = %q, want %q", tc.err, got, tc.want)
		}
		for _, internal := range []string{"10.255.255.53", "10.1.2.3", "dial", "lookup", "internal"} {
			if strings.Contains(got, internal) {
				t.Errorf("FetchFailure(%v) = %q shows %q", tc.err, got, internal)
			}
		}
	}
}
