package actor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWebFingerJRD(t *testing.T) {
	l, err := NewLocal("https://cvd.example.org", "vendor", Organization, rsaKey(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	var jrd JRD
	if err := json.Unmarshal(WebFingerJRD(l, "cvd.example.org"), &jrd); err != nil {
		t.Fatal(err)
	}
	if jrd.Subject != "acct:vendor@cvd.example.org" || len(jrd.Aliases) != 1 || jrd.Aliases[0] != l.ID {
		t.Fatalf("jrd %+v", jrd)
	}
	if len(jrd.Links) != 1 || jrd.Links[0] != (JRDLink{Rel: "self", Type: ContentType, Href: l.ID}) {
		t.Fatalf("links %+v", jrd.Links)
	}
}

func TestParseAcct(t *testing.T) {
	for _, tc := range []struct {
		in, name, host, err string
	}{
		{in: "acct:vendor@cvd.example.org", name: "vendor", host: "cvd.example.org"},
		{in: "acct:vendor@127.0.0.1:7001", name: "vendor", host: "127.0.0.1:7001"},
		{in: "acct:Vendor@CVD.example.org", name: "Vendor", host: "cvd.example.org"},
		{in: "vendor@cvd.example.org", err: "not an acct: URI"},
		{in: "acct:vendor", err: "want acct:NAME@HOST"},
		{in: "acct:@cvd.example.org", err: "want acct:NAME@HOST"},
		{in: "acct:vendor@", err: "want acct:NAME@HOST"},
		{in: "acct:a@b@c", err: `"b@c" is not a host`},
		{in: "acct:a b@c", err: "not allowed"},
		{in: "acct:vendor@host/path", err: "is not a host"},
	} {
		name, host, err := ParseAcct(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAcct(%q) err=%v; want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || host != tc.host {
			t.Errorf("ParseAcct(%q) = %q, %q, %v", tc.in, name, host, err)
		}
	}
}

func TestResolveWebFinger(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.TrimPrefix(srv.URL, "http://")
		res := r.URL.Query().Get("resource")
		switch res {
		case "acct:alice@" + host:
			w.Header().Set("Content-Type", JRDContentType)
			w.Write([]byte(`{"subject":"` + res + `","links":[{"rel":"http://webfinger.net/rel/profile-page","type":"text/html","href":"` + srv.URL + `/@alice"},{"rel":"self","type":"application/activity+json","href":"` + srv.URL + `/actors/alice"}]}`))
		case "acct:mallory@" + host:
			w.Header().Set("Content-Type", JRDContentType)
			w.Write([]byte(`{"subject":"acct:alice@` + host + `","links":[]}`))
		case "acct:html@" + host:
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<html></html>`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	f, err := NewFetcher(FetcherOptions{Client: SafeClientOptions{AllowPrivate: true, Timeout: 5 * time.Second}, KeyID: "https://node.example/actors/node#main-key", Key: rsaKey(t, 2), PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.ResolveWebFinger(context.Background(), "acct:alice@"+host)
	if err != nil || id != srv.URL+"/actors/alice" {
		t.Fatalf("alice: %q %v", id, err)
	}
	for _, tc := range []struct{ acct, want string }{
		{"mallory@" + host, "answer is about"},
		{"acct:html@" + host, "is not a JRD"},
		{"acct:nobody@" + host, "status 404"},
	} {
		if _, err := f.ResolveWebFinger(context.Background(), tc.acct); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err=%v; want %q", tc.acct, err, tc.want)
		}
	}

	// Without AllowPrivate the loopback peer is refused at dial time.
	strict, err := NewFetcher(FetcherOptions{KeyID: "https://node.example/actors/node#main-key", Key: rsaKey(t, 2), PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.ResolveWebFinger(context.Background(), "acct:alice@"+host); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback WebFinger without AllowPrivate: err=%v", err)
	}
}
