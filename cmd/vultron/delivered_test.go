package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
)

// closedAddress returns a 127.0.0.1 address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// goneActor serves an actor document whose inbox answers 410 Gone, which
// the node gives up at once.
func goneActor(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /actors/gone", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		json.NewEncoder(w).Encode(map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": srv.URL + "/actors/gone",
			"type": "Organization", "inbox": srv.URL + "/actors/gone/inbox", "outbox": srv.URL + "/actors/gone/outbox"})
	})
	mux.HandleFunc("POST /actors/gone/inbox", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/actors/gone"
}

// TestSubmitSaysWhatBecameOfTheDelivery checks that report submit says
// "sent" only once the recipient took the report: to an address where
// nothing answers it is queued, with why the first attempt failed and the
// command that lists it, and exit 0; to a recipient that refuses it for
// good it is a failure naming the dead letter.
func TestSubmitSaysWhatBecameOfTheDelivery(t *testing.T) {
	finder := startCLINode(t, "finder:Person")
	vendor := startCLINode(t, "vendor:Organization")
	nobody := "http://" + closedAddress(t) + "/actors/vendor"
	tests := []struct {
		name     string
		to       string
		extra    []string
		code     int
		stdout   []string
		noStdout []string
		stderr   []string
	}{
		{"delivered", vendor.url + "/actors/vendor", nil, 0,
			[]string{"RS sent: "}, []string{"queued", "not delivered"}, nil},
		{"nothing answers", nobody, nil, 0,
			[]string{"RS queued: ", "not delivered: the delivery to " + nobody + " failed (", "connection refused", "the node retries it, next at ", "vultron deliveries"},
			[]string{"RS sent"}, nil},
		{"nothing answers, quiet", nobody, []string{"-q"}, 0,
			nil, []string{"RS ", "not delivered"}, []string{"not delivered: the delivery to " + nobody + " failed (", "vultron deliveries"}},
		{"without waiting", nobody, []string{"--no-wait"}, 0,
			[]string{"RS queued: "}, []string{"RS sent", "not delivered"}, nil},
		{"gone", goneActor(t), nil, 1,
			[]string{"RS queued: "}, []string{"RS sent"}, []string{"the node accepted ", "failed for good", "410", "vultron deliveries retry "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"report", "submit", "--to", tc.to, "--name", "Heap overflow", "--content", "A crafted file."}, tc.extra...)
			code, out, errOut := finder.cli(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout %q lacks %q", out, want)
				}
			}
			for _, not := range tc.noStdout {
				if strings.Contains(out, not) {
					t.Errorf("stdout %q has %q", out, not)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
			if tc.code == 0 && errOut != "" && tc.stderr == nil {
				t.Errorf("stderr %q, want nothing", errOut)
			}
			if tc.extra != nil && tc.extra[0] == "-q" && (strings.Count(out, "\n") != 1 || cases.ShortID(strings.TrimSpace(out)) != strings.TrimSpace(out)) {
				t.Errorf("-q printed %q, want the report's short id alone", out)
			}
		})
	}
}

// TestDeliverySentenceClaimsNoCount checks that the sentence of a delivery
// that failed names its last error and next attempt and no count of
// attempts, which a node that retries at once has made more of by the
// time the command reads the queue.
func TestDeliverySentenceClaimsNoCount(t *testing.T) {
	next := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		o        deliveryOutcome
		want     []string
		wantNone []string
	}{
		{"retrying after three attempts", deliveryOutcome{State: deliveryRetrying, Pending: []api.Delivery{{ID: 7, Recipient: "http://p/actors/v", Attempts: 3, NextAttempt: next, LastError: "connection refused"}}},
			[]string{"the delivery to http://p/actors/v failed (connection refused)", "next at 2027-01-02T03:04:05Z", "vultron deliveries"}, []string{"first attempt"}},
		{"given up", deliveryOutcome{State: deliveryDead, Dead: []api.Delivery{{ID: 9, Recipient: "http://q/actors/gone", Attempts: 1, LastError: "peer answered 410 Gone."}}},
			[]string{"the delivery to http://q/actors/gone failed for good: peer answered 410 Gone (", "vultron deliveries retry 9"}, nil},
		{"pending", deliveryOutcome{State: deliveryPending, Pending: []api.Delivery{{ID: 1, Recipient: "http://p/actors/v"}}},
			[]string{"queued for http://p/actors/v, first attempt pending"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.o.sentence()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("%q has %q", got, w)
				}
			}
		})
	}
}

// TestFollowSaysWhatBecameOfTheDelivery checks that follow, like report
// submit, says when its Follow did not arrive: queued, with why, to an
// address where nothing answers; a failure naming the dead letter when
// the recipient refused it for good.
func TestFollowSaysWhatBecameOfTheDelivery(t *testing.T) {
	coord := startCLINode(t, "coordinator:Service")
	vendor := startCLINode(t, "vendor:Organization")
	nobody := "http://" + closedAddress(t) + "/actors/vendor"
	tests := []struct {
		name   string
		to     string
		code   int
		stdout []string
		not    []string
		stderr []string
	}{
		{"delivered", vendor.url + "/actors/vendor", 0, []string{"coordinator asked to follow " + vendor.url + "/actors/vendor"}, []string{"not delivered"}, nil},
		{"nothing answers", nobody, 0, []string{"coordinator asked to follow " + nobody, "not delivered: the delivery to " + nobody + " failed (", "vultron deliveries"}, nil, nil},
		{"gone", goneActor(t), 1, nil, nil, []string{"the node accepted ", "failed for good", "410", "vultron deliveries retry "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := coord.cli(t, "follow", tc.to)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout %q lacks %q", out, want)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(out, not) {
					t.Errorf("stdout %q has %q", out, not)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
		})
	}
}

// TestSubmitToItselfIsABadCommandLine is a newcomer with one node who
// reports to the node's own actor: the command says that a report goes to
// another actor, before anything is sent, rather than the node's "has no
// recipient".
func TestSubmitToItselfIsABadCommandLine(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	code, out, errOut := n.cli(t, "report", "submit", "--to", n.url+"/actors/vendor", "--name", "x", "--content", "y")
	want := "vultron report: --to names vendor, the actor that submits the report; a report goes to another actor, the vendor's or a coordinator's.\n"
	if code != 2 || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, want)
	}
	if got := n.ok(t, "report", "list"); got != "No reports.\n" {
		t.Errorf("report list after the refusal: %q, want no report", got)
	}
}

// TestReportShowSaysWhetherASubmittedReportArrived checks that report show,
// on the reporter's node, says when the report was submitted (not "sent")
// and whether its delivery reached the recipient, from the node's queue.
func TestReportShowSaysWhetherASubmittedReportArrived(t *testing.T) {
	finder := startCLINode(t, "finder:Person")
	vendor := startCLINode(t, "vendor:Organization")
	nobody := "http://" + closedAddress(t) + "/actors/vendor"
	tests := []struct {
		name, to string
		want     []string
	}{
		{"delivered", vendor.url + "/actors/vendor", []string{"\nsubmitted ", "\ndelivery  delivered\n"}},
		{"nothing answers", nobody, []string{"\nsubmitted ", "\ndelivery  not delivered: the delivery to " + nobody + " failed (", "vultron deliveries"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.TrimSpace(finder.ok(t, "report", "submit", "-q", "--to", tc.to, "--name", "Heap overflow", "--content", "A crafted file."))
			out := finder.ok(t, "report", "show", id)
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("report show lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "\nsent ") {
				t.Errorf("report show says sent:\n%s", out)
			}
		})
	}
}
