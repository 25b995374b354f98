package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/store"
)

// TestDeliveriesDamagedCommand: vultron deliveries damaged lists the
// delivery records the node set aside because they did not open (when,
// how large, why; --json the node's answer), and deliveries
// discard-damaged ID discards one once looked at; an id that is not a
// number is a bad command line, one the node does not hold a failure
// that says so, and neither discards anything.
func TestDeliveriesDamagedCommand(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	first, err := node.New(t.Context(), node.Config{DataDir: dir, PublicURL: u, Actors: []node.ActorConfig{{Name: "vendor", Type: "Organization"}},
		NoSync: true, Logger: zerolog.Nop(), Notice: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	act := u + "/activities/damaged"
	err = first.Store().EnqueueOutbound(context.Background(), store.Outbound{ID: act, Actor: "vendor",
		Body: fmt.Appendf(nil, `{"id":%q,"type":"Note"}`, act), Deliveries: []store.DeliveryTarget{{Recipient: u + "/actors/nobody"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pending, _, err := first.Store().PendingDeliveries(context.Background(), 0, 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending = %+v, %v; want one", pending, err)
	}
	id := pending[0].ID
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageDelivery(t, filepath.Join(dir, "vultron.db"), id)
	n := startCLINodeIn(t, dir, ln, node.Config{}, "vendor:Organization")

	var listed api.DamagedDeliveries
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := json.Unmarshal([]byte(n.ok(t, "deliveries", "damaged", "--json")), &listed); err != nil {
			t.Fatal(err)
		}
		if listed.Count == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the damaged delivery was not set aside in 20s: %+v", listed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(listed.Damaged) != 1 || listed.Damaged[0].ID != id || listed.Damaged[0].Bytes != 1 || listed.Damaged[0].SetAside.IsZero() {
		t.Fatalf("--json: %+v, want delivery %d, 1 byte, with when it was set aside", listed, id)
	}
	out := n.ok(t, "deliveries", "damaged")
	for _, want := range []string{"damaged delivery records: 1", "SET ASIDE", fmt.Sprintf("\n  %d ", id), "value is not sealed", "discard-damaged"} {
		if !strings.Contains(out, want) {
			t.Errorf("deliveries damaged printed %q, want %q in it", out, want)
		}
	}

	n.fails(t, 2, `damaged delivery id "x" is not a number`, "deliveries", "discard-damaged", "x")
	n.fails(t, 2, "discard-damaged takes one damaged delivery id", "deliveries", "discard-damaged")
	n.fails(t, 1, "no damaged delivery 999999", "deliveries", "discard-damaged", "999999")
	if got := n.ok(t, "deliveries", "discard-damaged", fmt.Sprint(id)); got != fmt.Sprintf("damaged delivery record %d discarded\n", id) {
		t.Errorf("discard-damaged printed %q", got)
	}
	if got := n.ok(t, "deliveries", "damaged"); got != "No damaged delivery records.\n" {
		t.Errorf("deliveries damaged after the discard printed %q", got)
	}
}
