package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
)

// TestProgressLine checks that the progress line is rewritten in place on a
// terminal and, in a log, printed as a new line only when the state changes.
func TestProgressLine(t *testing.T) {
	var log strings.Builder
	p := newProgress(&log)
	if p.terminal {
		t.Fatal("a strings.Builder was taken for a terminal")
	}
	p.show("waiting: EM NONE", "NONE")
	p.show("waiting: EM NONE", "NONE")
	p.show("waiting: EM ACTIVE", "ACTIVE")
	p.done()
	if got, want := log.String(), "waiting: EM NONE\nwaiting: EM ACTIVE\n"; got != want {
		t.Errorf("plain progress printed %q, want %q", got, want)
	}

	var tty strings.Builder
	p = &progress{w: &tty, terminal: true}
	p.show("waiting: EM NONE (1s)", "NONE")
	p.show("waiting: EM NONE (2s)", "NONE")
	p.done()
	if got, want := tty.String(), "\r\033[Kwaiting: EM NONE (1s)\r\033[Kwaiting: EM NONE (2s)\n"; got != want {
		t.Errorf("terminal progress printed %q, want %q", got, want)
	}
}

// TestWaitConditions checks how conditions are read and evaluated against
// the case as GET /api/cases/{id} shows it.
func TestWaitConditions(t *testing.T) {
	const me = "https://n.example/actors/vendor"
	var d api.CaseDetail
	if err := json.Unmarshal([]byte(`{"emState":"ACTIVE","pxaState":"Pxa","ledgerLength":7,"closed":false,
		"participants":[{"actor":"https://n.example/actors/finder","rmState":"CLOSED"},
		{"actor":"`+me+`","rmState":"ACCEPTED","vfdState":"VFd","pecState":"SIGNATORY"}]}`), &d); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cond string
		want bool
	}{
		{"em=active", true},
		{"em=PROPOSED", false},
		{"pxa=Pxa", true},
		{"pxa=pxa", false},
		{"entries>=7", true},
		{"entries>=8", false},
		{"rm=ACCEPTED", true},
		{"rm=closed", false},
		{"vfd=VFd,pec=SIGNATORY", true},
		{"em=ACTIVE,closed", false},
	}
	for _, tt := range tests {
		conds, err := parseConditions(tt.cond)
		if err != nil {
			t.Fatalf("%s: %v", tt.cond, err)
		}
		all := true
		for _, c := range conds {
			all = all && c.holds(d, me)
		}
		if all != tt.want {
			t.Errorf("%s holds: %v, want %v", tt.cond, all, tt.want)
		}
	}
	// The advisory's conditions: a draft shared for review, every reviewer
	// answered, a revision published.
	const finder = "https://n.example/actors/finder"
	for _, tt := range []struct {
		advisory string
		want     map[string]bool
	}{
		{`null`, map[string]bool{"draft": false, "reviewed": false, "published": false}},
		{`{"draft":{"noteId":"n","reviews":[{"actor":"` + finder + `","state":"invited"}]}}`, map[string]bool{"draft": true, "reviewed": false, "published": false}},
		{`{"draft":{"noteId":"n","reviews":[{"actor":"` + finder + `","state":"approve"}]}}`, map[string]bool{"draft": true, "reviewed": true, "published": false}},
		{`{"articleId":"a","revisions":[{"number":1}]}`, map[string]bool{"draft": false, "reviewed": false, "published": true}},
	} {
		var withAdvisory api.CaseDetail
		if err := json.Unmarshal([]byte(`{"advisory":`+tt.advisory+`}`), &withAdvisory); err != nil {
			t.Fatal(err)
		}
		for cond, want := range tt.want {
			conds, err := parseConditions(cond)
			if err != nil {
				t.Fatalf("%s: %v", cond, err)
			}
			if got := conds[0].holds(withAdvisory, me); got != want {
				t.Errorf("%s holds for advisory %s: %v, want %v", cond, tt.advisory, got, want)
			}
		}
	}
	for _, bad := range []string{"em", "entries>=x", "entries>=-1", "colour=red", "em="} {
		if _, err := parseConditions(bad); !errors.Is(err, errUsage) {
			t.Errorf("parseConditions(%q) = %v, want a usage error", bad, err)
		}
	}
}

// TestWaitOutlivesARestartOfTheNode: a node that stops answering while
// case wait waits (it is being restarted) is no reason to give up before
// the timeout: the wait says the node does not answer and goes on once
// it answers again. The node stops once it has answered the first read,
// and its next start takes one connection without answering it, so that
// the wait meets a node that does not answer whatever its polls' timing.
func TestWaitOutlivesARestartOfTheNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener, em string, answered chan<- struct{}) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close") // no connection outlives the node
			w.Write([]byte(`{"id":"http://n/cases/abc","emState":"` + em + `","pxaState":"pxa","ledgerLength":3}`))
			if answered != nil {
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		})}
		go srv.Serve(ln)
		return srv
	}
	answered := make(chan struct{}, 1)
	first := serve(ln, "PROPOSED", answered)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-answered:
		case <-stop:
			return
		}
		_ = first.Shutdown(context.Background()) // the node stops ...
		ln, err := net.Listen("tcp", addr)       // ... and starts again,
		if err != nil {
			t.Error(err)
			return
		}
		go func() { <-stop; ln.Close() }() // a wait that gave up connects no more
		c, err := ln.Accept()              // not answering at first,
		if err != nil {
			return // the wait ended, and the test says how
		}
		c.Close()
		second := serve(ln, "ACTIVE", nil) // then with the case further on
		t.Cleanup(func() { second.Close() })
	}()
	code, out, errOut := runCLI(t, "case", "wait", "http://n/cases/abc", "--until", "em=ACTIVE", "--timeout", "20s", "--node", "http://"+addr, "--token-file", tokenFile)
	close(stop)
	<-done
	if code != 0 || !strings.Contains(out, "case abc reached em=ACTIVE") || !strings.Contains(errOut, "the node does not answer") {
		t.Errorf("exit %d, stdout %q, stderr %q; want the wait to say the node did not answer and to end when case abc (by its short id) reached em=ACTIVE", code, out, errOut)
	}
}

// TestWaitStopsAtACertificateTheClientRefuses: a node whose certificate the
// client does not trust will not be trusted a moment later, as a node
// being restarted answers again: the wait ends at once with the reason,
// rather than wait out its timeout.
func TestWaitStopsAtACertificateTheClientRefuses(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"https://n/cases/abc","emState":"PROPOSED","pxaState":"pxa","ledgerLength":3}`))
	}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code          int
		stdout, stder string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCLI(t, "case", "wait", "https://n/cases/abc", "--until", "em=ACTIVE", "--timeout", "10m", "--node", srv.URL, "--token-file", tokenFile)
		done <- result{code, out, errOut}
	}()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.stder, "certificate") || strings.Contains(r.stder, "the node does not answer") {
			t.Errorf("exit %d, stderr %q; want the wait to end at once on the certificate", r.code, r.stder)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait went on against a certificate the client refuses")
	}
}
