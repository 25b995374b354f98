package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/openvultron/vultron/api"
)

// servedSchema compiles document.json from the schemas a node serves at
// /schemas/, fetched over HTTP as a peer or a tool would.
func servedSchema(t *testing.T, n *testNode) *jsonschema.Schema {
	t.Helper()
	get := func(path string) []byte {
		resp, err := http.Get(n.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return b
	}
	var index struct {
		Schemas []string `json:"schemas"`
	}
	if err := json.Unmarshal(get("/schemas/"), &index); err != nil || len(index.Schemas) == 0 {
		t.Fatalf("the schema index: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const base = "https://vultron.invalid/schemas/"
	for _, name := range index.Schemas {
		name = name[strings.LastIndex(name, "/")+1:]
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(get("/schemas/" + name)))
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		if err := c.AddResource(base+name, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(base + "document.json")
	if err != nil {
		t.Fatalf("compile the served document.json: %v", err)
	}
	return s
}

// TestEmittedActivitiesMatchSchemas runs a case through its embargo, a
// note, a status and an invitation, then checks every activity the nodes
// sent (each actor's outbox, the Case Actor's included) and every ledger
// payload against the JSON Schemas the node serves.
func TestEmittedActivitiesMatchSchemas(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization", "deployer:Organization")
	schema := servedSchema(t, vendor)
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Schema check","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	caseID := c.ID
	steps := []string{
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID),
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
			time.Now().UTC().Format(time.RFC3339), time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339), caseID),
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"a note"},"target":%q,"context":%q}`, caseID, caseID),
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q,"roles":["deployer"]}`, vendor.actorID("deployer"), caseID, caseID),
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ProductStatus","name":"Widget","vendor":%q,"purl":"pkg:npm/widget@1.0.0","versions":"< 1.0.1","status":"affected"},"target":%q,"context":%q}`, vendorID, caseID, caseID),
	}
	for i, st := range steps {
		vendor.submit(t, "vendor", st)
		want := int64(3 + i)
		vendor.oneCase(t, fmt.Sprintf("entry %d", want), func(c api.Case) bool { return c.LedgerLength == want })
	}
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 7 })

	validate := func(what string, raw []byte) {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("%s is not JSON: %v", what, err)
			return
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s does not match the served schema: %v\n%s", what, err, raw)
		}
	}
	checked := 0
	caseActor := "case-" + caseID[strings.LastIndex(caseID, "/")+1:]
	for _, on := range []struct {
		n      *testNode
		actors []string
	}{{finder, []string{"finder"}}, {vendor, []string{"vendor", caseActor}}} {
		for _, a := range on.actors {
			status, body := on.n.api(t, http.MethodGet, "/actors/"+a+"/outbox?limit=200", "")
			if status != http.StatusOK {
				t.Fatalf("outbox of %s: %d %s", a, status, body)
			}
			var page struct {
				Items []json.RawMessage `json:"orderedItems"`
			}
			if err := json.Unmarshal(body, &page); err != nil || len(page.Items) == 0 {
				t.Fatalf("outbox of %s: %d items (%v)", a, len(page.Items), err)
			}
			for i, it := range page.Items {
				validate(fmt.Sprintf("%s's outbox item %d", a, i), it)
				checked++
			}
		}
	}
	status, body := vendor.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/ledger?limit=100", "")
	if status != http.StatusOK {
		t.Fatalf("ledger: %d %s", status, body)
	}
	var ledger struct {
		Entries []struct {
			Payload json.RawMessage `json:"payloadSnapshot"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(body, &ledger); err != nil || len(ledger.Entries) != 7 {
		t.Fatalf("ledger: %d entries (%v)", len(ledger.Entries), err)
	}
	for i, e := range ledger.Entries {
		validate(fmt.Sprintf("ledger payload %d", i), e.Payload)
		checked++
	}
	t.Logf("%d emitted documents match the served schemas", checked)
}
