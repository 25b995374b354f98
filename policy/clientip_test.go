package policy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestClientIP reads the client IP of requests from trusted and untrusted
// peers with every form of forwarding header. warn marks the rows whose
// headers a trusted proxy sent malformed or conflicting: the proxy's own
// address is used and a warning logged.
func TestClientIP(t *testing.T) {
	const proxy = "10.0.0.5:4000" // trusted: 10.0.0.0/8
	for _, tc := range []struct {
		name    string
		remote  string
		headers [][2]string
		want    string
		warn    bool
	}{
		{"no proxy, no header", "198.51.100.1:5555", nil, "198.51.100.1", false},
		{"untrusted peer spoofs X-Forwarded-For", "198.51.100.1:5555", [][2]string{{"X-Forwarded-For", "203.0.113.7"}}, "198.51.100.1", false},
		{"untrusted peer spoofs Forwarded", "198.51.100.1:5555", [][2]string{{"Forwarded", "for=203.0.113.7"}}, "198.51.100.1", false},
		{"untrusted peer sends garbage", "198.51.100.1:5555", [][2]string{{"Forwarded", `for="[oops`}}, "198.51.100.1", false},
		{"IPv6 peer", "[2001:db8::1]:443", nil, "2001:db8::1", false},
		{"IPv4-mapped peer", "[::ffff:198.51.100.1]:443", nil, "198.51.100.1", false},
		{"trusted proxy, no header", proxy, nil, "10.0.0.5", false},
		{"X-Forwarded-For, one client", proxy, [][2]string{{"X-Forwarded-For", "203.0.113.7"}}, "203.0.113.7", false},
		{"X-Forwarded-For, client-written entries on the left are ignored", proxy, [][2]string{{"X-Forwarded-For", "1.2.3.4, 10.9.9.9, 203.0.113.7"}}, "203.0.113.7", false},
		{"X-Forwarded-For, trusted hops skipped", proxy, [][2]string{{"X-Forwarded-For", "203.0.113.7, 10.1.1.1,10.2.2.2"}}, "203.0.113.7", false},
		{"X-Forwarded-For over two header lines", proxy, [][2]string{{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-For", "10.1.1.1"}}, "203.0.113.7", false},
		{"X-Forwarded-For with ports and IPv6", proxy, [][2]string{{"X-Forwarded-For", "[2001:db8::7]:8080, 10.1.1.1:99"}}, "2001:db8::7", false},
		{"X-Forwarded-For IPv6 without brackets", proxy, [][2]string{{"X-Forwarded-For", "2001:db8::7"}}, "2001:db8::7", false},
		{"X-Forwarded-For all hops trusted", proxy, [][2]string{{"X-Forwarded-For", "10.7.7.7, 10.1.1.1"}}, "10.7.7.7", false},
		{"X-Forwarded-For unknown hop", proxy, [][2]string{{"X-Forwarded-For", "203.0.113.7, unknown, 10.1.1.1"}}, "10.1.1.1", false},
		{"Forwarded, one element", proxy, [][2]string{{"Forwarded", "for=203.0.113.7;proto=https;by=10.0.0.5"}}, "203.0.113.7", false},
		{"Forwarded, quoted IPv4 with port", proxy, [][2]string{{"Forwarded", `for="203.0.113.7:47011"`}}, "203.0.113.7", false},
		{"Forwarded, quoted IPv6 with port", proxy, [][2]string{{"Forwarded", `For="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17", false},
		{"Forwarded, case-insensitive names, spaces", proxy, [][2]string{{"Forwarded", `Proto=https ; FOR=203.0.113.7 , for=10.1.1.1`}}, "203.0.113.7", false},
		{"Forwarded, chain with trusted hops", proxy, [][2]string{{"Forwarded", `for=192.0.2.60;proto=http;by=203.0.113.43, for=203.0.113.7, for=10.1.1.1`}}, "203.0.113.7", false},
		{"Forwarded over two header lines", proxy, [][2]string{{"Forwarded", "for=203.0.113.7"}, {"Forwarded", "for=10.1.1.1"}}, "203.0.113.7", false},
		{"Forwarded, quoted comma does not split the element", proxy, [][2]string{{"Forwarded", `for=203.0.113.7;ext="a, for=10.3.3.3"`}}, "203.0.113.7", false},
		{"Forwarded, obfuscated client stands behind its proxy", proxy, [][2]string{{"Forwarded", `for=_hidden, for="_SEVKISEK"`}}, "10.0.0.5", false},
		{"Forwarded, obfuscated port", proxy, [][2]string{{"Forwarded", `for="203.0.113.7:_abc"`}}, "203.0.113.7", false},
		{"Forwarded, unknown after a trusted hop", proxy, [][2]string{{"Forwarded", `for=unknown, for=10.1.1.1`}}, "10.1.1.1", false},
		{"Forwarded, element without for", proxy, [][2]string{{"Forwarded", `proto=https`}}, "10.0.0.5", false},
		{"Forwarded, empty elements allowed", proxy, [][2]string{{"Forwarded", `, for=203.0.113.7,`}}, "203.0.113.7", false},
		{"both headers agree", proxy, [][2]string{{"Forwarded", "for=203.0.113.7"}, {"X-Forwarded-For", "203.0.113.7"}}, "203.0.113.7", false},

		{"both headers disagree (one passed through from the client)", proxy, [][2]string{{"Forwarded", "for=1.2.3.4"}, {"X-Forwarded-For", "203.0.113.7"}}, "10.0.0.5", true},
		{"Forwarded IPv6 not quoted", proxy, [][2]string{{"Forwarded", "for=[2001:db8::1]"}}, "10.0.0.5", true},
		{"Forwarded port not quoted", proxy, [][2]string{{"Forwarded", "for=203.0.113.7:80"}}, "10.0.0.5", true},
		{"Forwarded IPv6 without brackets", proxy, [][2]string{{"Forwarded", `for="2001:db8::1"`}}, "10.0.0.5", true},
		{"Forwarded unterminated quote", proxy, [][2]string{{"Forwarded", `for="203.0.113.7`}}, "10.0.0.5", true},
		{"Forwarded repeated for", proxy, [][2]string{{"Forwarded", `for=203.0.113.7;for=10.1.1.1`}}, "10.0.0.5", true},
		{"Forwarded bad port", proxy, [][2]string{{"Forwarded", `for="203.0.113.7:99999"`}}, "10.0.0.5", true},
		{"Forwarded host name", proxy, [][2]string{{"Forwarded", `for=client.example`}}, "10.0.0.5", true},
		{"Forwarded pair without value", proxy, [][2]string{{"Forwarded", `for=`}}, "10.0.0.5", true},
		{"Forwarded only commas", proxy, [][2]string{{"Forwarded", `,,`}}, "10.0.0.5", true},
		{"X-Forwarded-For empty entry", proxy, [][2]string{{"X-Forwarded-For", "203.0.113.7,,10.1.1.1"}}, "10.0.0.5", true},
		{"X-Forwarded-For not an address", proxy, [][2]string{{"X-Forwarded-For", "client.example"}}, "10.0.0.5", true},
		{"X-Forwarded-For with a zone", proxy, [][2]string{{"X-Forwarded-For", "fe80::1%eth0"}}, "10.0.0.5", true},
		{"X-Forwarded-For too many hops", proxy, [][2]string{{"X-Forwarded-For", strings.Repeat("10.1.1.1,", maxForwardedHops) + "203.0.113.7"}}, "10.0.0.5", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := mustNew(t, Config{TrustedProxies: []string{"10.0.0.0/8", "2001:db8:ffff::1"}, ProxyHeaders: []string{"Forwarded", "X-Forwarded-For"}, Logger: zerolog.New(&logs)})
			r := httptest.NewRequest(http.MethodPost, "http://node.example/actors/vendor/inbox", nil)
			r.RemoteAddr = tc.remote
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			if got := p.ClientIP(r); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
			warned := strings.Contains(logs.String(), `"level":"warn"`)
			if warned != tc.warn {
				t.Errorf("warned = %t (%s), want %t", warned, strings.TrimSpace(logs.String()), tc.warn)
			}
		})
	}
}

// TestClientIPForgedForwardedThroughAppendingProxy sends requests through
// a reverse proxy that appends the client's address to X-Forwarded-For and
// passes every other header through, as nginx does with
// $proxy_add_x_forwarded_for: a Forwarded header the client wrote reaches
// the node unchanged. The node reads only the header the operator named
// for its proxies, so the client is counted under its own address,
// whatever it forged; a node told that its proxies set Forwarded reads
// that one only.
func TestClientIPForgedForwardedThroughAppendingProxy(t *testing.T) {
	const client = "198.51.100.23"
	for _, tc := range []struct {
		name    string
		headers []string // ProxyHeaders
		forged  [][2]string
		want    string
	}{
		{"default, nothing forged", nil, nil, client},
		{"default, forged Forwarded", nil, [][2]string{{"Forwarded", "for=203.0.113.9"}}, client},
		{"default, forged Forwarded naming the proxy", nil, [][2]string{{"Forwarded", "for=127.0.0.1"}}, client},
		{"default, forged Forwarded that is malformed", nil, [][2]string{{"Forwarded", `for="[oops`}}, client},
		{"default, forged X-Forwarded-For on the left", nil, [][2]string{{"X-Forwarded-For", "203.0.113.9"}}, client},
		{"X-Forwarded-For named, forged Forwarded", []string{"x-forwarded-for"}, [][2]string{{"Forwarded", "for=203.0.113.9"}}, client},
		// The proxy appends to X-Forwarded-For only: a node told to read
		// Forwarded reads what the client wrote there. The operator's
		// setting must name the header the proxy writes.
		{"Forwarded named, the proxy writes none", []string{"Forwarded"}, nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, Config{TrustedProxies: []string{"127.0.0.1"}, ProxyHeaders: tc.headers})
			seen := make(chan string, 1)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- p.ClientIP(r)
			}))
			t.Cleanup(backend.Close)
			target, err := url.Parse(backend.URL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := httputil.NewSingleHostReverseProxy(target) // appends X-Forwarded-For
			r := httptest.NewRequest(http.MethodPost, "http://node.example/actors/vendor/inbox", io.NopCloser(strings.NewReader("{}")))
			r.RemoteAddr = client + ":5555"
			for _, h := range tc.forged {
				r.Header.Add(h[0], h[1])
			}
			w := httptest.NewRecorder()
			proxy.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("through the proxy: %d %s", w.Code, w.Body)
			}
			if got := <-seen; got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseProxyHeaders accepts the two forwarding headers in any case
// and refuses anything else with a sentence that names it.
func TestParseProxyHeaders(t *testing.T) {
	for _, tc := range []struct {
		in       []string
		fwd, xff bool
	}{
		{nil, false, true},
		{[]string{"X-Forwarded-For"}, false, true},
		{[]string{"forwarded"}, true, false},
		{[]string{" Forwarded ", "x-forwarded-for"}, true, true},
	} {
		fwd, xff, err := ParseProxyHeaders(tc.in)
		if err != nil || fwd != tc.fwd || xff != tc.xff {
			t.Errorf("ParseProxyHeaders(%q) = %t, %t, %v; want %t, %t", tc.in, fwd, xff, err, tc.fwd, tc.xff)
		}
	}
	for _, bad := range []string{"", "X-Real-IP", "Forwarded-For"} {
		if _, _, err := ParseProxyHeaders([]string{bad}); err == nil || !strings.Contains(err.Error(), "is not Forwarded or X-Forwarded-For") {
			t.Errorf("ParseProxyHeaders(%q) = %v, want a refusal", bad, err)
		}
	}
	if _, err := New(Config{ProxyHeaders: []string{"X-Real-IP"}}); err == nil {
		t.Error("New accepted an unknown forwarding header")
	}
}

// TestClientIPSingleAddressProxy trusts one IPv6 address given without a
// prefix length.
func TestClientIPSingleAddressProxy(t *testing.T) {
	p := mustNew(t, Config{TrustedProxies: []string{"2001:db8:ffff::1"}})
	r := httptest.NewRequest(http.MethodGet, "http://node.example/", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	for remote, want := range map[string]string{"[2001:db8:ffff::1]:443": "203.0.113.7", "[2001:db8:ffff::2]:443": "2001:db8:ffff::2"} {
		r.RemoteAddr = remote
		if got := p.ClientIP(r); got != want {
			t.Errorf("from %s: ClientIP = %q, want %q", remote, got, want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.0.0.0/8", " 192.0.2.1 ", "10.1.2.3/8", "::ffff:192.0.2.9", "fd00::/8", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if strings.Join(s, " ") != "10.0.0.0/8 192.0.2.1/32 10.0.0.0/8 192.0.2.9/32 fd00::/8 10.0.0.0/8" {
		t.Errorf("parsed %v", s)
	}
	for _, bad := range []string{"", "proxy.example", "10.0.0.0/33", "fe80::1%eth0"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), "is not a CIDR prefix") {
			t.Errorf("ParseTrustedProxies(%q) = %v, want a refusal", bad, err)
		}
	}
	if _, err := New(Config{TrustedProxies: []string{"nope"}}); err == nil {
		t.Error("New accepted a bad trusted proxy")
	}
}

// BenchmarkClientIP reads the client of a request forwarded through two
// trusted proxies, once with X-Forwarded-For and once with Forwarded.
func BenchmarkClientIP(b *testing.B) {
	p, err := New(Config{TrustedProxies: []string{"10.0.0.0/8"}})
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range [][2]string{
		{"X-Forwarded-For", "198.51.100.3, 203.0.113.7, 10.1.1.1"},
		{"Forwarded", `for=198.51.100.3, for="[2001:db8::7]:4711";proto=https, for=10.1.1.1`},
	} {
		b.Run(h[0], func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "http://node.example/actors/vendor/inbox", nil)
			r.RemoteAddr = "10.0.0.5:4000"
			r.Header.Set(h[0], h[1])
			b.ReportAllocs()
			for b.Loop() {
				if p.ClientIP(r) == "10.0.0.5" {
					b.Fatal("the proxy's address was returned")
				}
			}
		})
	}
}
