package federation_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gocsaf/csaf/v3/csaf"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
)

// cli runs the vultron command line against the named node, with its
// token, and returns its stdout, its stderr and its exit code.
func (c *cluster) cli(name string, args ...string) (string, string, int) {
	c.t.Helper()
	n := c.node(name)
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--node", n.url, "--token-file", filepath.Join(n.dir, "api-token"))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			c.t.Fatalf("vultron %s on %s: %v", strings.Join(args, " "), name, err)
		}
		code = exit.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// ok runs a command that must succeed and returns its output.
func (c *cluster) ok(name string, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.cli(name, args...)
	if code != 0 {
		c.t.Fatalf("vultron %s on %s: exit %d: %s%s", strings.Join(args, " "), name, code, errOut, out)
	}
	return out
}

// until runs a command until its output contains want (the command line
// has no way to be told), within the cluster's wait.
func (c *cluster) until(name, want string, args ...string) string {
	c.t.Helper()
	var out, errOut string
	c.waitFor(fmt.Sprintf("vultron %s on %s to print %q", strings.Join(args, " "), name, want), func() bool {
		var code int
		out, errOut, code = c.cli(name, args...)
		return code == 0 && strings.Contains(out, want)
	}, func() string { return out + errOut })
	return out
}

// fetch GETs a URL without credentials.
func (c *cluster) fetch(u, accept string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, b
}

// publishedDocs are the machine-readable documents a node served for an
// advisory, by format (csaf, cve, osv).
type publishedDocs map[string][]byte

// publicationNetwork runs, on three vultron processes and through the
// command line alone, what the README shows: the coordinator follows the
// vendor (its admin accepts), the finder follows the coordinator (an open
// actor); the finder reports, the vendor's case (under the node's default
// embargo) gets a product and a CVE id; while the embargo is in force
// nothing of the case reaches an unauthenticated URL of the vendor's node
// or the coordinator's inbox, and publishing is refused; the draft goes to
// the finder, publishing before its answer is refused without --force, the
// finder approves, the case goes public, the vendor publishes; the
// coordinator receives Create(Article) whose links work and hashes match,
// and announces it to the finder; a revision arrives as Update. It returns
// the documents the vendor's node served for the advisory.
func publicationNetwork(t *testing.T) publishedDocs {
	const (
		title   = "Heap overflow in the Zebra image parser"
		product = "Zebra Image Server"
		purl    = "pkg:npm/zebra-image@3.1.0"
		cve     = "CVE-2026-41877"
	)
	bin := buildVultron(t)
	c := newCluster(t, bin, "finder:Person", "vendor:Organization", "coordinator:Service --open-followers coordinator")
	finder, vendor, coord := c.id("finder"), c.id("vendor"), c.id("coordinator")

	// Following: the vendor's actor asks its admin, the coordinator's
	// accepts at once.
	c.ok("coordinator", "follow", vendor)
	c.until("vendor", coord, "followers", "--pending")
	c.ok("vendor", "followers", "accept", coord)
	c.until("coordinator", vendor, "followers", "--following")
	c.ok("finder", "follow", coord)
	c.until("coordinator", finder, "followers")

	// The case, with a product and a CVE id.
	report := strings.TrimSpace(c.ok("finder", "report", "submit", "-q", "--to", vendor, "--name", title,
		"--content", "A crafted TIFF overflows a heap buffer in the zebra-image decoder."))
	c.ok("vendor", "report", "show", report, "--timeout", "60s")
	short := strings.TrimSpace(c.ok("vendor", "report", "validate", "-q", report))
	var detail api.CaseDetail
	if err := json.Unmarshal([]byte(c.ok("vendor", "case", "show", short, "--json")), &detail); err != nil || detail.ID == "" {
		t.Fatalf("case show %s --json: %+v (%v)", short, detail, err)
	}
	caseID := detail.ID
	c.ok("vendor", "product", "add", caseID, "--product", product, "--purl", purl, "--versions", "< 3.1.1",
		"--status", "affected", "--statement", "Upgrade to 3.1.1.")
	c.ok("vendor", "case", "cve", caseID, cve)
	c.until("vendor", cve, "case", "show", caseID)
	c.until("finder", purl, "case", "show", caseID)

	// Under embargo: publishing is refused and nothing leaks.
	if _, errOut, code := c.cli("vendor", "advisory", "publish", caseID); code == 0 || !strings.Contains(errOut, "embargo") {
		t.Fatalf("advisory publish under embargo: exit %d, %q; want a refusal naming the embargo", code, errOut)
	}
	checkNoLeak(t, c, caseID, regexp.MustCompile(`(?i)zebra|`+cve))

	// Draft review: the finder is invited, publishing waits for it.
	c.ok("vendor", "advisory", "share", caseID, "--with", finder, "--title", title, "--summary", "Upgrade to 3.1.1.")
	c.until("finder", "invited", "case", "show", caseID)
	c.ok("vendor", "status", "public", caseID, "--wait", "pxa=Pxa,em=EXITED", "--timeout", "60s")
	if _, errOut, code := c.cli("vendor", "advisory", "publish", caseID); code == 0 || !strings.Contains(errOut, "--force") || !strings.Contains(errOut, finder) {
		t.Fatalf("advisory publish before the review: exit %d, %q; want a refusal naming the reviewer and --force", code, errOut)
	}
	c.ok("finder", "advisory", "review", caseID, "--approve", "--comment", "Accurate.")
	c.until("vendor", "approve: Accurate.", "case", "show", caseID)

	var pub api.Published
	if err := json.Unmarshal([]byte(c.ok("vendor", "advisory", "publish", caseID, "--json")), &pub); err != nil || pub.Revision != 1 || pub.Links.CVE == "" {
		t.Fatalf("advisory publish: %+v (%v)", pub, err)
	}

	// The coordinator, a follower, receives the Article; its links work.
	create := c.waitInbox("coordinator", "Create(Article) from the vendor", func(a activity) bool {
		o, _ := a["object"].(map[string]any)
		return a["type"] == "Create" && a["actor"] == vendor && o["type"] == "Article"
	})
	article := create["object"].(map[string]any)
	if article["name"] != title || article["url"] != pub.Links.Page || !strings.Contains(fmt.Sprint(article["tag"]), "#"+cve) {
		t.Errorf("the Article: name %v, url %v (want %s), tags %v", article["name"], article["url"], pub.Links.Page, article["tag"])
	}
	docs := publishedDocs{}
	formats := map[string]string{pub.Links.CSAF: "csaf", pub.Links.CVE: "cve", pub.Links.OSV: "osv"}
	attachments, _ := article["attachment"].([]any)
	for _, a := range attachments {
		href, _ := a.(map[string]any)["href"].(string)
		format, ok := formats[href]
		if !ok {
			t.Errorf("the Article links %q, which is none of the advisory's documents %v", href, formats)
			continue
		}
		var body []byte
		c.waitFor("the attachment "+href, func() bool {
			var status int
			status, body = c.fetch(href, "")
			return status == http.StatusOK && json.Valid(body)
		}, func() string { return string(body) })
		docs[format] = body
		checkHashes(t, c, href, body)
	}
	if len(docs) != 3 {
		t.Fatalf("the Article links %d of the 3 documents: %v", len(docs), attachments)
	}
	if status, page := c.fetch(pub.Links.Page, "text/html"); status != http.StatusOK || !strings.Contains(string(page), title) {
		t.Errorf("the advisory's page %s: %d", pub.Links.Page, status)
	}

	// The CSAF document passes the schema and every mandatory test.
	var v any
	if err := json.Unmarshal(docs["csaf"], &v); err != nil {
		t.Fatal(err)
	}
	if errs, err := csaf.ValidateCSAF(v); err != nil || len(errs) > 0 {
		t.Errorf("the served CSAF document fails the CSAF 2.0 schema: %v %v", err, errs)
	}
	if verdict := validateCSAF(t, map[string][]byte{"served.json": docs["csaf"]})["served.json"]; !verdict.IsValid || verdict.Tests < 40 {
		t.Errorf("the served CSAF document: valid %v after %d tests, failed %+v", verdict.IsValid, verdict.Tests, verdict.Failed)
	}
	checkRecordStructure(t, docs, cve, purl)

	// The provider metadata and the feed name the advisory.
	_, meta := c.fetch(c.node("vendor").url+"/.well-known/csaf/provider-metadata.json", "")
	if err := json.Unmarshal(meta, &v); err != nil {
		t.Fatal(err)
	}
	if errs, err := csaf.ValidateProviderMetadata(v); err != nil || len(errs) > 0 {
		t.Errorf("provider metadata: %v %v", err, errs)
	}
	if _, feed := c.fetch(c.node("vendor").url+"/.well-known/csaf/white/feed-tlp-white.json", ""); !strings.Contains(string(feed), pub.TrackingID) {
		t.Errorf("the ROLIE feed lacks %s:\n%s", pub.TrackingID, feed)
	}

	// The coordinator shares it with its own followers.
	c.ok("coordinator", "announce", pub.Links.Page)
	c.waitInbox("finder", "the coordinator's Announce of the advisory", func(a activity) bool {
		return a["type"] == "Announce" && a["actor"] == coord && refID(a["object"]) == pub.Links.Page
	})

	// A revision reaches the follower as an Update.
	c.ok("vendor", "advisory", "publish", caseID, "--summary", "Fixed in 3.1.1; every earlier 3.x is affected.")
	c.waitInbox("coordinator", "Update(Article) from the vendor", func(a activity) bool {
		o, _ := a["object"].(map[string]any)
		return a["type"] == "Update" && a["actor"] == vendor && o["type"] == "Article" && strings.Contains(fmt.Sprint(o["summary"]), "every earlier 3.x")
	})
	return docs
}

// TestPublicationNetwork is the whole network of issue 18's done-when:
// see publicationNetwork. make conformance checks the same run's CVE and
// OSV records against their official schemas
// (TestConformancePublishedRecords).
func TestPublicationNetwork(t *testing.T) {
	publicationNetwork(t)
}

// checkNoLeak GETs, without credentials, every public URL of the vendor's
// node where a case's advisory would show (the advisories list and pages
// under the case's tracking id, the CSAF provider's files, the actor's
// document, collections and outbox, the case's and its ledger's URLs), each
// as HTML, JSON and ActivityStreams, and reads every activity the
// coordinator (the vendor's follower) received: none may carry what leaks
// matches. node's TestPublication walks every route of the router.
func checkNoLeak(t *testing.T, c *cluster, caseID string, leaks *regexp.Regexp) {
	t.Helper()
	base := c.node("vendor").url
	tracking := cases.TrackingID(caseID)
	year := time.Now().UTC().Format("2006")
	paths := []string{"/advisories", "/advisories?format=json", "/advisories/" + tracking, "/advisories/" + tracking + "/csaf.json",
		"/advisories/" + tracking + "/cve.json", "/advisories/" + tracking + "/osv.json",
		"/.well-known/csaf/provider-metadata.json", "/.well-known/csaf/white/feed-tlp-white.json",
		"/.well-known/csaf/white/index.txt", "/.well-known/csaf/white/changes.csv",
		"/.well-known/csaf/white/" + year + "/" + strings.ToLower(tracking) + ".json",
		"/actors/vendor", "/actors/vendor/outbox", "/actors/vendor/followers", "/actors/vendor/following",
		"/calendar.ics", "/nodeinfo/2.1"}
	u, err := url.Parse(caseID)
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, u.Path, u.Path+"/ledger")
	for _, p := range paths {
		for _, accept := range []string{"text/html", "application/json", "application/activity+json"} {
			status, body := c.fetch(base+p, accept)
			if leaks.Match(body) {
				t.Errorf("under embargo, GET %s (%s) without credentials answered %d with the case's content: %.300s", p, accept, status, body)
			}
		}
	}
	for _, a := range c.inbox("coordinator") {
		if b, _ := json.Marshal(a); leaks.Match(b) {
			t.Errorf("under embargo, the vendor's follower received the case's content: %.300s", b)
		}
	}
}

// checkHashes compares a served document with its .sha256 and .sha512
// files.
func checkHashes(t *testing.T, c *cluster, href string, body []byte) {
	t.Helper()
	s256, s512 := sha256.Sum256(body), sha512.Sum512(body)
	for ext, want := range map[string]string{".sha256": hex.EncodeToString(s256[:]), ".sha512": hex.EncodeToString(s512[:])} {
		status, got := c.fetch(href+ext, "")
		if status != http.StatusOK || !strings.HasPrefix(string(got), want) {
			t.Errorf("GET %s%s: %d %q, want %s", href, ext, status, got, want)
		}
	}
}

// checkRecordStructure checks, without the official schemas (make
// conformance has them), what the CVE and OSV records must carry: the
// CVE id, the CNA container's affected product, and OSV's package URL.
func checkRecordStructure(t *testing.T, docs publishedDocs, cve, purl string) {
	t.Helper()
	var rec struct {
		DataType    string `json:"dataType"`
		DataVersion string `json:"dataVersion"`
		CVEMetadata struct {
			CVEID string `json:"cveId"`
			State string `json:"state"`
		} `json:"cveMetadata"`
		Containers struct {
			CNA struct {
				Affected     []json.RawMessage `json:"affected"`
				Descriptions []json.RawMessage `json:"descriptions"`
				References   []json.RawMessage `json:"references"`
			} `json:"cna"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(docs["cve"], &rec); err != nil {
		t.Fatalf("the CVE record: %v", err)
	}
	if rec.DataType != "CVE_RECORD" || !strings.HasPrefix(rec.DataVersion, "5.") || rec.CVEMetadata.CVEID != cve || rec.CVEMetadata.State != "PUBLISHED" ||
		len(rec.Containers.CNA.Affected) == 0 || len(rec.Containers.CNA.Descriptions) == 0 || len(rec.Containers.CNA.References) == 0 {
		t.Errorf("the CVE record lacks what CVE JSON 5 requires: %s", docs["cve"])
	}
	var osv struct {
		ID       string   `json:"id"`
		Modified string   `json:"modified"`
		Aliases  []string `json:"aliases"`
		Affected []struct {
			Package struct {
				PURL string `json:"purl"`
			} `json:"package"`
		} `json:"affected"`
	}
	if err := json.Unmarshal(docs["osv"], &osv); err != nil {
		t.Fatalf("the OSV record: %v", err)
	}
	if osv.ID == "" || osv.Modified == "" || !strings.Contains(strings.Join(osv.Aliases, " "), cve) || len(osv.Affected) != 1 ||
		osv.Affected[0].Package.PURL == "" || !strings.HasPrefix(purl, osv.Affected[0].Package.PURL) {
		t.Errorf("the OSV record lacks its id, the CVE alias or the package: %s", docs["osv"])
	}
}
