package actor

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestCheckAddress lists the dereference targets of B19 that must be
// refused, and a few public addresses that must not.
func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		refused bool
		what    string
	}{
		{"127.0.0.1", true, "loopback"},
		{"127.8.9.10", true, "loopback"},
		{"::1", true, "loopback"},
		{"::", true, "unspecified"},
		{"0.0.0.0", true, "unspecified"},
		{"0.1.2.3", true, "this network"},
		{"10.1.2.3", true, "private"},
		{"172.16.0.1", true, "private"},
		{"192.168.1.1", true, "private"},
		{"100.64.0.1", true, "carrier-grade NAT"},
		{"169.254.169.254", true, "link-local"},
		{"198.18.0.1", true, "benchmarking"},
		{"198.19.255.255", true, "benchmarking"},
		{"192.0.2.1", true, "documentation"},
		{"224.0.0.1", true, "multicast"},
		{"255.255.255.255", true, "broadcast"},
		{"240.0.0.1", true, "reserved"},
		{"::ffff:127.0.0.1", true, "loopback"},
		{"::ffff:10.0.0.1", true, "private"},
		{"64:ff9b::7f00:1", true, "NAT64"},
		{"64:ff9b:1::a00:1", true, "NAT64"},
		{"2002:7f00:1::", true, "6to4"},
		{"2002:808:808::", true, "6to4"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true, "Teredo"},
		{"2001:db8::1", true, "documentation"},
		{"fd00::1", true, "unique local"},
		{"fc00::1", true, "unique local"},
		{"fe80::1", true, "link-local"},
		{"ff02::1", true, "multicast"},
		{"::127.0.0.1", true, "non-global"},
		{"93.184.215.14", false, ""},
		{"8.8.8.8", false, ""},
		{"2606:4700::6810:85e5", false, ""},
		{"2a00:1450:4001:80b::200e", false, ""},
	} {
		err := CheckAddress(netip.MustParseAddr(tc.addr), false)
		if !tc.refused {
			if err != nil {
				t.Errorf("%s refused: %v", tc.addr, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), tc.what) {
			t.Errorf("%s: err=%v; want a refusal naming %q", tc.addr, err, tc.what)
		}
	}
	// AllowPrivate opens private ranges but never the unspecified address.
	if err := CheckAddress(netip.MustParseAddr("127.0.0.1"), true); err != nil {
		t.Errorf("AllowPrivate refused loopback: %v", err)
	}
	for _, a := range []string{"0.0.0.0", "::", "224.0.0.1"} {
		if err := CheckAddress(netip.MustParseAddr(a), true); err == nil {
			t.Errorf("AllowPrivate allowed %s", a)
		}
	}
}

// TestSafeClientRefusesAtDial fetches literal addresses: the dial is
// refused in Control, before any packet is sent.
func TestSafeClientRefusesAtDial(t *testing.T) {
	c := NewSafeClient(SafeClientOptions{Timeout: 2 * time.Second})
	for _, u := range []string{
		"http://127.0.0.1:9/",
		"http://[::1]:9/",
		"http://[::]:9/",
		"http://0.0.0.0:9/",
		"http://10.0.0.1:9/",
		"http://100.64.0.1:9/",
		"http://169.254.169.254/latest/meta-data/",
		"http://198.18.0.1:9/",
		"http://[::ffff:127.0.0.1]:9/",
		"http://[64:ff9b::7f00:1]:9/",
		"http://[2002:7f00:1::]:9/",
		"http://[fd00::1]:9/",
		"http://[fe80::1]:9/",
	} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: fetched", u)
			continue
		}
		if !errors.Is(err, ErrAddressRefused) {
			t.Errorf("%s: err=%v; want ErrAddressRefused", u, err)
		}
	}
}

func TestSafeClientLoopbackServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2048)))
		case "/stream":
			w.(http.Flusher).Flush() // no Content-Length
			for i := 0; i < 4; i++ {
				w.Write([]byte(strings.Repeat("y", 512)))
				w.(http.Flusher).Flush()
			}
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/to-file":
			w.Header().Set("Location", "file:///etc/passwd")
			w.WriteHeader(http.StatusFound)
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()

	if _, err := NewSafeClient(SafeClientOptions{}).Get(srv.URL); !errors.Is(err, ErrAddressRefused) {
		t.Fatalf("loopback server without AllowPrivate: err=%v; want ErrAddressRefused", err)
	}
	c := NewSafeClient(SafeClientOptions{AllowPrivate: true, MaxBody: 1024})
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("loopback server with AllowPrivate: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	if _, err := c.Get(srv.URL + "/big"); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("announced 2 KiB body: err=%v; want ErrBodyTooLarge", err)
	}
	resp, err = c.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("streamed 2 KiB body: err=%v; want ErrBodyTooLarge", err)
	}
	if _, err := c.Get(srv.URL + "/loop"); err == nil || !strings.Contains(err.Error(), "stopped after 3 redirects") {
		t.Errorf("redirect loop: err=%v", err)
	}
	if _, err := c.Get(srv.URL + "/to-file"); err == nil || !strings.Contains(err.Error(), `scheme "file"`) {
		t.Errorf("redirect to file: err=%v", err)
	}
}

// TestRedirectPolicy checks the redirect rules that need no network:
// https never downgrades to http, and only http(s) is followed.
func TestRedirectPolicy(t *testing.T) {
	check := checkRedirect(3)
	req := func(u string) *http.Request {
		r, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	from := []*http.Request{req("https://peer.example/a")}
	for _, tc := range []struct {
		to   string
		want string
	}{
		{"https://peer.example/b", ""},
		{"http://peer.example/b", "from https to http refused"},
		{"data:text/plain,x", `scheme "data"`},
		{"gopher://peer.example/", `scheme "gopher"`},
	} {
		err := check(req(tc.to), from)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.to, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err=%v; want %q", tc.to, err, tc.want)
		}
	}
	many := []*http.Request{from[0], from[0], from[0], from[0]}
	if err := check(req("https://peer.example/c"), many); err == nil {
		t.Error("a fourth redirect was followed")
	}
	if err := checkRedirect(-1)(req("https://peer.example/c"), from); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("no-redirect client: %v", err)
	}
}
