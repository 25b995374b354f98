package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/store"
)

// TestCaseContentEncryptedAtRest runs two real nodes through a report, its
// case and a note, all carrying a unique marker, and reads the raw bbolt
// files: the marker is never there (open, closed, compacted, after
// rotate-key), while the API of each node returns it.
func TestCaseContentEncryptedAtRest(t *testing.T) {
	const marker = "ZQX-ENCRYPTION-MARKER-4b1d"
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"%s report name","content":"%s report content"}}`, vendorID, marker, marker))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	host := vendor.oneCase(t, "the case at the vendor", func(c api.Case) bool { return c.LedgerLength == 2 })
	finder.oneCase(t, "the replica at the finder", func(c api.Case) bool { return c.LedgerLength == 2 })
	caseID := host.ID
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"%s note"},"target":%q,"context":%q}`, marker, caseID, caseID))
	vendor.oneCase(t, "the note at the vendor", func(c api.Case) bool { return c.LedgerLength == 3 })
	finder.oneCase(t, "the note at the finder", func(c api.Case) bool { return c.LedgerLength == 3 })

	// The API returns the marker: the report in the inbox, the note and
	// ledger payload in the case.
	servesMarker := func(n *testNode, who string) {
		t.Helper()
		status, body := n.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID), "")
		if status != http.StatusOK || !strings.Contains(string(body), marker+" note") {
			t.Errorf("%s: case detail %d does not show the note", who, status)
		}
		status, body = n.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/ledger?limit=100", "")
		if status != http.StatusOK || !strings.Contains(string(body), marker) {
			t.Errorf("%s: ledger %d does not show the marker", who, status)
		}
	}
	servesMarker(vendor, "vendor")
	servesMarker(finder, "finder")
	if items := vendor.inboxItems(t, "vendor"); len(items) == 0 || !strings.Contains(fmt.Sprint(items[len(items)-1]), marker+" report content") {
		t.Error("vendor inbox does not show the report")
	}

	noMarker := func(dir, when string) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(dir, "vultron.db"))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) == 0 {
			t.Fatalf("%s: empty store file", when)
		}
		if bytes.Contains(raw, []byte(marker)) {
			t.Errorf("%s: the raw store file %s holds the marker", when, dir)
		}
	}
	noMarker(vendor.dir, "vendor, running")
	noMarker(finder.dir, "finder, running")

	addr := vendor.url[len("http://"):]
	vendor.stop()
	finder.stop()
	noMarker(vendor.dir, "vendor, stopped")
	noMarker(finder.dir, "finder, stopped")
	for _, dir := range []string{vendor.dir, finder.dir} {
		if err := store.CompactFile(filepath.Join(dir, "vultron.db"), 0); err != nil {
			t.Fatal(err)
		}
		noMarker(dir, "compacted")
	}

	oldKeys, err := store.LoadDataKeys(vendor.dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := store.RotateDataKey(context.Background(), "bolt:"+filepath.Join(vendor.dir, "vultron.db"), "", store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if rot.OldKeyID != store.KeyID(oldKeys.Current) || rot.Resealed == 0 {
		t.Fatalf("rotation = %+v", rot)
	}
	noMarker(vendor.dir, "vendor, rotated")
	if _, err := store.Open(filepath.Join(vendor.dir, "vultron.db"), store.Options{DataKey: oldKeys.Current}); err == nil {
		t.Fatal("the old data key still opens the rotated store")
	}

	// The node starts on the rotated store and serves the same case.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s not free again: %v", addr, err)
	}
	again := startNodeIn(t, vendor.dir, ln, "vendor:Organization")
	got := again.oneCase(t, "the case after rotation", func(c api.Case) bool { return c.ID == caseID })
	if got.LedgerLength != 3 || !got.Hosted {
		t.Errorf("case after rotation = %+v", got)
	}
	servesMarker(again, "vendor after rotation")
}
