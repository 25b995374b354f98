// Command run is `make bench`: it runs every benchmark of the node several
// times on this machine, prints each figure (the median of the runs) with
// the command that produced it and its ratio to the limit measured in the
// same run, and writes the raw results as JSON for bench/plot.py.
//
// It builds bin/vultron, the load generator and the limit inbox into a
// temporary directory, starts node processes on 127.0.0.1 only, and bounds
// every wait.
//
// -parts selects what to measure: inbox (the node's inbox, its limits, the
// limit inbox, and the two Node.js inboxes it is compared with), fanout,
// bigcase, footprint, postgres and growth. A run of some parts only is
// merged into -out: the figures of the parts it measured replace theirs,
// the others stay, and the file records when each part was measured.
//
// Beside the node's inbox, the inbox part always measures the limit inbox
// (bench.LimitInbox: the limit's work behind HTTP, in a process of its
// own), and -peers measures two inboxes on the same machine, in the same
// run, with the same load generator: the interoperability peer of
// federation_test/peer (Fedify plus Misskey's and PeerTube's verifiers on
// every request, no key cache, a JSON line logged per activity) and a plain
// Fedify inbox (bench/fedify-inbox: one actor, one inbox listener, Fedify's
// own verification and key cache, nothing else).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/bench"
	"github.com/openvultron/vultron/store"
)

// Figure is one measured quantity: every run's value and their median.
type Figure struct {
	Name    string    `json:"name"`
	Group   string    `json:"group"`
	Size    float64   `json:"size,omitempty"`
	Unit    string    `json:"unit"`
	Median  float64   `json:"median"`
	Runs    []float64 `json:"runs"`
	Command string    `json:"command"`
}

// Results is what results.json holds.
type Results struct {
	Date    string    `json:"date"`
	Machine string    `json:"machine"`
	CPUs    int       `json:"cpus"`
	Go      string    `json:"go"`
	Runs    int       `json:"runs"`
	Figures []*Figure `json:"figures"`
	Notes   []string  `json:"notes,omitempty"`
	// Parts says when each part's figures were measured, where a run of
	// some parts was merged into the results of an earlier one.
	Parts map[string]string `json:"parts,omitempty"`
}

var res Results

// allParts are the parts of the benchmark, in the order they run.
func allParts() []string {
	return []string{"inbox", "fanout", "bigcase", "footprint", "postgres", "growth", "backup"}
}

func main() {
	runs := flag.Int("runs", 3, "runs of every measurement (the median is reported)")
	out := flag.String("out", "bench/results/results.json", "where to write the raw results (a run of some -parts is merged into it)")
	quick := flag.Bool("quick", false, "small sizes, for trying the harness out")
	partList := flag.String("parts", strings.Join(allParts(), ","), "what to measure, comma-separated: inbox (the node's inbox, its limits, the limit inbox and the\nNode.js inboxes beside it), fanout, bigcase, footprint, postgres (the inbox of one and of two processes, fan-out and\nthe big case on a throw-away PostgreSQL), growth (figures on stores of 10,000 and 100,000 cases, both engines), backup (a backup of a\nrunning bbolt store of 20 and 100 MB, and the latency of the writes beside it)")
	peers := flag.Bool("peers", true, "measure the interoperability peer (federation_test/peer) and the plain Fedify inbox\n(bench/fedify-inbox) beside the node's inbox (needs node and their npm packages: make peer-deps bench-deps)")
	flag.Parse()
	parts, err := parseParts(*partList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	res = Results{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), CPUs: runtime.NumCPU(), Go: runtime.Version(), Runs: *runs}
	if err := run(*runs, *quick, *peers, parts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		save(*out, parts)
		os.Exit(1)
	}
	save(*out, parts)
}

// parseParts reads -parts: a set of known part names.
func parseParts(list string) (map[string]bool, error) {
	parts := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allParts(), p) {
			return nil, fmt.Errorf("-parts: unknown part %q (want some of %s)", p, strings.Join(allParts(), ", "))
		}
		parts[p] = true
	}
	return parts, nil
}

// partOf returns the part a figure belongs to, from its group (and, for a
// ratio, its name).
func partOf(f *Figure) string {
	switch {
	case strings.HasPrefix(f.Group, "inbox"), f.Group == "limit-inbox", f.Group == "interop-peer", f.Group == "fedify",
		f.Group == "ratio" && (strings.HasPrefix(f.Name, "inbox") || strings.HasPrefix(f.Name, "limit inbox") || strings.HasPrefix(f.Name, "ours/")):
		return "inbox"
	case f.Group == "fanout", f.Group == "micro":
		return "fanout"
	case strings.HasPrefix(f.Group, "bigcase"):
		return "bigcase"
	case f.Group == "footprint":
		return "footprint"
	case f.Group == "backup":
		return "backup"
	case strings.HasPrefix(f.Group, "pg"):
		return "postgres"
	case strings.HasPrefix(f.Group, "growth"):
		return "growth"
	}
	return ""
}

// save writes the results to path. When only some parts were measured,
// the figures of the other parts are kept from the results already there.
func save(path string, parts map[string]bool) {
	os.MkdirAll(filepath.Dir(path), 0o755)
	if len(parts) < len(allParts()) {
		merge(path, parts)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench: write results:", err)
		return
	}
	fmt.Println("raw results:", path)
}

// merge adds to res the figures of the parts not measured now from the
// results in path, and records when each part was measured.
func merge(path string, parts map[string]bool) {
	res.Parts = map[string]string{}
	for p := range parts {
		res.Parts[p] = res.Date
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return // nothing to merge with
	}
	var old Results
	if err := json.Unmarshal(b, &old); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s is not a results file (%v); writing this run's figures only\n", path, err)
		return
	}
	var kept []*Figure
	for _, f := range old.Figures {
		if p := partOf(f); p != "" && !parts[p] {
			kept = append(kept, f)
			if res.Parts[p] == "" {
				res.Parts[p] = old.Date
				if d, ok := old.Parts[p]; ok {
					res.Parts[p] = d
				}
			}
		}
	}
	res.Figures = append(kept, res.Figures...)
	res.Notes = append(res.Notes, fmt.Sprintf("%s measured on %s; the other parts' figures are kept from %s (machine then: %s)",
		strings.Join(slices.Sorted(maps.Keys(parts)), ", "), res.Date, path, old.Machine))
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`model name\s*:\s*(.*)`).FindSubmatch(b); m != nil {
			model = string(m[1])
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if m := regexp.MustCompile(`MemTotal:\s*(\d+) kB`).FindSubmatch(b); m != nil {
			kb, _ := strconv.Atoi(string(m[1]))
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/1024/1024)
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s", model, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// record adds a figure and prints it.
func record(group, name string, size float64, unit string, runs []float64, command string) *Figure {
	f := &Figure{Name: name, Group: group, Size: size, Unit: unit, Runs: runs, Median: median(runs), Command: command}
	res.Figures = append(res.Figures, f)
	fmt.Printf("%-52s %12.4g %-14s (median of %d)\n    $ %s\n", name, f.Median, unit, len(runs), command)
	return f
}

func find(name string) *Figure {
	for _, f := range res.Figures {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func ratio(name, of, limit string) {
	a, b := find(of), find(limit)
	if a == nil || b == nil || b.Median == 0 {
		return
	}
	var r []float64
	for i := range min(len(a.Runs), len(b.Runs)) {
		if b.Runs[i] != 0 {
			r = append(r, a.Runs[i]/b.Runs[i])
		}
	}
	record("ratio", name, 0, "ratio", r, "run by run: "+of+" / "+limit)
}

func run(runs int, quick, peers bool, parts map[string]bool) error {
	tmp, err := os.MkdirTemp("", "vultron-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bin")
	for _, b := range [][2]string{{"vultron", "./cmd/vultron"}, {"loadgen", "./bench/loadgen"}, {"limitinbox", "./bench/limitinbox"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b[0]), b[1])
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", b[1], err)
		}
	}
	fmt.Printf("machine: %s; %s; %d runs per figure; parts: %s\n\n", res.Machine, res.Go, runs,
		strings.Join(slices.DeleteFunc(allParts(), func(p string) bool { return !parts[p] }), ", "))

	// 1. Limits, fan-out and the big case's ledger: Go benchmarks.
	var benchRe []string
	if parts["inbox"] {
		benchRe = append(benchRe, "InboxLimit", "AckLimit")
	}
	if parts["fanout"] {
		if quick {
			benchRe = append(benchRe, "RSASign", "Fanout/sig=.*/N=200$")
		} else {
			benchRe = append(benchRe, "RSASign", "Fanout")
		}
	}
	if parts["bigcase"] {
		if quick {
			benchRe = append(benchRe, "BigCase/entries=5000")
		} else {
			benchRe = append(benchRe, "BigCase")
		}
	}
	if len(benchRe) > 0 {
		if err := goBench("./bench", strings.Join(benchRe, "|"), runs); err != nil {
			return err
		}
	}
	if parts["backup"] {
		// A backup of a running bbolt store, and the writes beside it.
		if err := goBench("./store", "BackupUnderWrites", runs); err != nil {
			return err
		}
	}

	// 2. Inbox throughput of a node process, and the limit inbox and the
	// Node.js inboxes beside it.
	if parts["inbox"] {
		count := 2000
		if quick {
			count = 300
		}
		if err := inboxPart(tmp, bin, runs, count, peers); err != nil {
			return err
		}
	}

	// 3. The big case held by a node; 4. footprint.
	if parts["bigcase"] {
		sizes := []int{5000, 10000, 30000}
		if quick {
			sizes = []int{5000}
		}
		if err := bigCaseNode(tmp, bin, runs, sizes); err != nil {
			return err
		}
	}
	if parts["postgres"] {
		if err := postgresPart(tmp, bin, runs, quick); err != nil {
			return err
		}
	}
	if parts["growth"] {
		if err := growthPart(tmp, bin, runs, quick); err != nil {
			return err
		}
	}
	if parts["footprint"] {
		nCases := []int{1000, 30000}
		if quick {
			nCases = []int{100, 1000}
		}
		if err := footprint(tmp, bin, runs, nCases); err != nil {
			return err
		}
	}
	return nil
}

var metricRe = regexp.MustCompile(`([0-9.e+-]+) ([^\s]+)`)

// goBench runs the Go benchmarks matching re, runs times each, and records
// every custom metric.
func goBench(pkg, re string, runs int) error {
	args := []string{"test", "-run", "^$", "-bench", re, "-benchtime", "1x", "-count", strconv.Itoa(runs), "-timeout", "30m", pkg}
	command := "go " + strings.Join(quote(args), " ")
	fmt.Println("running", command)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		os.Stdout.Write(out)
		return fmt.Errorf("go test -bench: %w", err)
	}
	type key struct{ name, unit string }
	vals := map[key][]float64{}
	var order []key
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		fields := strings.Fields(line)
		name := strings.TrimSuffix(fields[0], "-"+strconv.Itoa(runtime.GOMAXPROCS(0)))
		for _, m := range metricRe.FindAllStringSubmatch(strings.Join(fields[2:], " "), -1) {
			if m[2] == "ns/op" {
				continue
			}
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				continue
			}
			k := key{name, m[2]}
			if _, ok := vals[k]; !ok {
				order = append(order, k)
			}
			vals[k] = append(vals[k], v)
		}
	}
	names := map[string]string{}
	for _, k := range order {
		name, size, group := k.name+" "+k.unit, 0.0, "micro"
		if m := regexp.MustCompile(`InboxLimit/workers=(\d+)`).FindStringSubmatch(k.name); m != nil {
			name, group = "limit activities/s, "+m[1]+" workers", "inbox"
			size, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := regexp.MustCompile(`AckLimit/sig=(\w+)/workers=(\d+)`).FindStringSubmatch(k.name); m != nil {
			name, group = "acknowledged limit ("+m[1]+") activities/s, "+m[2]+" workers", "inbox"
			size, _ = strconv.ParseFloat(m[2], 64)
		}
		if m := regexp.MustCompile(`Fanout/sig=(\w+)/N=(\d+)`).FindStringSubmatch(k.name); m != nil {
			name, group = "fan-out ("+m[1]+") N="+m[2]+" "+k.unit, "fanout"
			size, _ = strconv.ParseFloat(m[2], 64)
		}
		if m := regexp.MustCompile(`BigCase/entries=(\d+)`).FindStringSubmatch(k.name); m != nil {
			name, group = "big case "+m[1]+" entries "+k.unit, "bigcase"
			size, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := regexp.MustCompile(`BackupUnderWrites/store=(\d+)MB`).FindStringSubmatch(k.name); m != nil {
			name, group = "backup of a "+m[1]+" MB store under writes "+k.unit, "backup"
			size, _ = strconv.ParseFloat(m[1], 64)
		}
		if k.name == "BenchmarkRSASign" {
			name = "RSA-2048 signs/s, all cores"
		}
		names[name] = k.name
		record(group, name, size, k.unit, vals[k], command)
	}
	fmt.Println()
	return nil
}

func quote(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "|^$* ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// node is a vultron serve child process.
type node struct {
	cmd   *exec.Cmd
	url   string
	dir   string
	token string
	start time.Duration // from exec to /readyz answering 200
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startNode starts `vultron serve` on dir (creating it) and waits until it
// is ready.
func startNode(bin, dir string) (*node, error) { return startNodeWith(bin, nodeOpts{dir: dir}) }

// nodeOpts are the settings of a node process that differ between parts.
type nodeOpts struct {
	dir string
	// store is --store ("" means the bbolt file in dir).
	store string
	// publicURL is --public-url ("" means the process's own address): the
	// second process of a node on a shared store has the first's.
	publicURL string
	// dataKeyFile is --data-key-file ("" means dir/data-key): processes on
	// one shared store are given one data key.
	dataKeyFile string
}

// startNodeWith starts `vultron serve` with o and waits until it is ready.
func startNodeWith(bin string, o nodeOpts) (*node, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	own := fmt.Sprintf("http://127.0.0.1:%d", port)
	public := o.publicURL
	if public == "" {
		public = own
	}
	args := []string{"serve", "--data", o.dir, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--public-url", public,
		"--actor", "vendor:Organization", "--allow-private-peers", "--log-level", "error"}
	if o.store != "" {
		args = append(args, "--store", o.store)
	}
	if o.dataKeyFile != "" {
		args = append(args, "--data-key-file", o.dataKeyFile)
	}
	cmd := exec.Command(filepath.Join(bin, "vultron"), args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, url: own, dir: o.dir}
	for time.Since(t0) < 2*time.Minute {
		resp, err := http.Get(own + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				n.start = time.Since(t0)
				tok, _ := os.ReadFile(filepath.Join(o.dir, "api-token"))
				n.token = strings.TrimSpace(string(tok))
				return n, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.stop()
	return nil, errors.New("node not ready after 2 minutes")
}

func (n *node) stop() {
	n.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

// rss returns the resident set of the node process in MiB (VmRSS).
func (n *node) rss() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s*(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

func (n *node) get(path string) (int, int, error) {
	req, _ := http.NewRequest(http.MethodGet, n.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, int(b), nil
}

// csrfField finds the CSRF token of a dashboard form.
var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// dashboard adds a viewer (who needs no second factor) with the node's
// API token, sets its password through the enrollment link, as a person
// does, and returns a client that carries the session the enrollment
// opens. Each call adds a viewer of its own: the growth part views the
// same store at each of its sizes, from a new node process each time.
func (n *node) dashboard() (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	name := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/users", strings.NewReader(`{"name":"`+name+`","role":"viewer"}`))
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
	body, status, err := readAll(c, req)
	if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
		return nil, fmt.Errorf("dashboard: add a viewer: %d %s %v", status, body, err)
	}
	var added struct {
		Enroll string `json:"enroll"`
	}
	if err := json.Unmarshal(body, &added); err != nil || !strings.Contains(added.Enroll, "code=") {
		return nil, fmt.Errorf("dashboard: add a viewer: no enrollment link in %s", body)
	}
	code := added.Enroll[strings.Index(added.Enroll, "code=")+len("code="):]
	req, _ = http.NewRequest(http.MethodGet, n.url+"/enroll?code="+url.QueryEscape(code), nil)
	body, status, err = readAll(c, req)
	csrf := csrfField.FindSubmatch(body)
	if err != nil || status != http.StatusOK || csrf == nil {
		return nil, fmt.Errorf("dashboard: the enrollment page: %d %v", status, err)
	}
	password := "a benchmark's long password"
	form := url.Values{"csrf": {string(csrf[1])}, "code": {code}, "password": {password}, "password2": {password}}
	req, _ = http.NewRequest(http.MethodPost, n.url+"/enroll", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, status, err = readAll(c, req); err != nil || status != http.StatusSeeOther {
		return nil, fmt.Errorf("dashboard: enroll: %d %v", status, err)
	}
	return c, nil
}

// readAll makes a request and returns the answer's body and status.
func readAll(c *http.Client, req *http.Request) ([]byte, int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return body, resp.StatusCode, err
}

// commits reads the node's count of durable store transactions from
// /metrics.
func (n *node) commits() (float64, error) { return n.counter("vultron_store_commits_total") }

// counter reads the value of one unlabelled counter from the node's
// /metrics.
func (n *node) counter(name string) (float64, error) {
	v, err := n.counters(name)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// counters reads the counters names from one scrape of n's /metrics, in
// their order.
func (n *node) counters(names ...string) ([]float64, error) {
	req, _ := http.NewRequest(http.MethodGet, n.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(names))
	for i, name := range names {
		// The value as the exposition writes it: a float in Go's shortest
		// form, so a small one has a negative exponent (1.5e-05).
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			return nil, fmt.Errorf("metrics of %s: no %s", n.url, name)
		}
		if out[i], err = strconv.ParseFloat(string(m[1]), 64); err != nil {
			return nil, fmt.Errorf("metrics of %s: %s: %w", n.url, name, err)
		}
	}
	return out, nil
}

type lgResult struct {
	Accepted     int     `json:"accepted"`
	Refused      int     `json:"refused"`
	Errors       int     `json:"errors"`
	FirstRefusal string  `json:"firstRefusal"`
	PerSecond    float64 `json:"acceptedPerSecond"`
	P50          float64 `json:"p50ms"`
	P95          float64 `json:"p95ms"`
	Seconds      float64 `json:"seconds"`
	DrainSeconds float64 `json:"drainSeconds"`
}

func loadgen(bin, inbox string, senders, count int, replies bool, object string, extra ...string) (lgResult, string, error) {
	args := []string{"-inbox", inbox, "-senders", strconv.Itoa(senders), "-count", strconv.Itoa(count), "-drain", "2m", "-replies=" + strconv.FormatBool(replies)}
	args = append(args, extra...)
	if object != "report" {
		args = append(args, "-object", object)
	}
	cmd := exec.Command(filepath.Join(bin, "loadgen"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	command := "go run ./bench/loadgen " + strings.Join(args, " ")
	if err != nil {
		return lgResult{}, command, fmt.Errorf("loadgen: %w", err)
	}
	var r lgResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, command, fmt.Errorf("loadgen output %q: %w", out, err)
	}
	if r.Refused+r.Errors > 0 {
		fmt.Printf("    (loadgen: %d refused, %d errors; first refusal %s)\n", r.Refused, r.Errors, r.FirstRefusal)
	}
	return r, command, nil
}

var nodeCmd = "vultron serve --data D --listen 127.0.0.1:P --public-url http://127.0.0.1:P --actor vendor:Organization --allow-private-peers"

// senderCounts are the concurrencies of the inbox part.
func senderCounts() []int { return []int{1, 16, 64} }

// inboxFigures collects the inbox part's measurements, run by run, by
// number of senders.
type inboxFigures struct {
	rate, p50, p95, perCommit, replied map[int][]float64
	cmds                               map[int]string
	others                             map[string]map[int][]float64 // by otherInbox name
	otherCmds                          map[string]map[int]string
}

// inboxPart measures the node's inbox, the limit inbox and, with peers,
// the Node.js inboxes beside it, interleaved: each run takes the node, then
// each other inbox, so that a change of load on the machine falls on all
// of them alike.
func inboxPart(tmp, bin string, runs, count int, peers bool) error {
	f := &inboxFigures{rate: map[int][]float64{}, p50: map[int][]float64{}, p95: map[int][]float64{},
		perCommit: map[int][]float64{}, replied: map[int][]float64{}, cmds: map[int]string{},
		others: map[string]map[int][]float64{}, otherCmds: map[string]map[int]string{}}
	measured := []otherInbox{limitInbox()}
	f.others[measured[0].name], f.otherCmds[measured[0].name] = map[int][]float64{}, map[int]string{}
	for _, p := range jsInboxes() {
		if !peers {
			continue
		}
		if err := p.ready(); err != nil {
			res.Notes = append(res.Notes, p.name+" not measured: "+err.Error())
			fmt.Println(p.name, "not measured:", err)
			continue
		}
		measured = append(measured, p)
		f.others[p.name], f.otherCmds[p.name] = map[int][]float64{}, map[int]string{}
	}
	for r := range runs {
		if err := nodeInboxRun(filepath.Join(tmp, fmt.Sprintf("inbox-%d", r)), bin, count, f); err != nil {
			return err
		}
		for _, p := range measured {
			if err := otherInboxRun(bin, count, p, f); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	for _, s := range senderCounts() {
		record("inbox", fmt.Sprintf("inbox accepted/s, %d senders", s), float64(s), "activities/s", f.rate[s], f.cmds[s])
		record("inbox-lat", fmt.Sprintf("inbox p50 ms, %d senders", s), float64(s), "ms", f.p50[s], f.cmds[s])
		record("inbox-lat", fmt.Sprintf("inbox p95 ms, %d senders", s), float64(s), "ms", f.p95[s], f.cmds[s])
		record("inbox-replied", fmt.Sprintf("inbox accepted and acknowledged/s, %d senders", s), float64(s), "activities/s", f.replied[s],
			f.cmds[s]+"; accepted / (timed phase + drain until every RK reached its sender)")
		record("inbox-commits", fmt.Sprintf("inbox store commits per accepted activity, %d senders", s), float64(s), "commits", f.perCommit[s],
			f.cmds[s]+"; vultron_store_commits_total of /metrics before and after")
	}
	fmt.Println()
	for _, p := range measured {
		for _, s := range senderCounts() {
			record(p.group, fmt.Sprintf("%s accepted/s, %d senders", p.name, s), float64(s), "activities/s", f.others[p.name][s], f.otherCmds[p.name][s])
		}
		fmt.Println()
	}
	for _, s := range senderCounts() {
		ours := fmt.Sprintf("inbox accepted/s, %d senders", s)
		ratio(fmt.Sprintf("inbox/limit, %d senders", s), ours, fmt.Sprintf("limit activities/s, %d workers", s))
		ratio(fmt.Sprintf("inbox/limit inbox, %d senders", s), ours, fmt.Sprintf("limit inbox accepted/s, %d senders", s))
		ratio(fmt.Sprintf("limit inbox/limit, %d senders", s), fmt.Sprintf("limit inbox accepted/s, %d senders", s),
			fmt.Sprintf("limit activities/s, %d workers", s))
		// The load generator's senders say they verify Ed25519, as other
		// Vultron nodes do: the node signs their acknowledgements so.
		ratio(fmt.Sprintf("inbox acknowledged/acknowledged limit, %d senders", s), fmt.Sprintf("inbox accepted and acknowledged/s, %d senders", s),
			fmt.Sprintf("acknowledged limit (%s) activities/s, %d workers", bench.AckEd25519, s))
		for _, p := range measured[1:] {
			ratio(fmt.Sprintf("ours/%s, %d senders", p.name, s), ours, fmt.Sprintf("%s accepted/s, %d senders", p.name, s))
		}
	}
	return nil
}

// nodeInboxRun starts a node on dir and sends it the load at each number
// of senders in turn.
func nodeInboxRun(dir, bin string, count int, f *inboxFigures) error {
	n, err := startNode(bin, dir)
	if err != nil {
		return err
	}
	defer n.stop()
	for _, s := range senderCounts() {
		before, err := n.commits()
		if err != nil {
			return err
		}
		lr, command, err := loadgen(bin, n.url+"/actors/vendor/inbox", s, count, true, "report")
		if err != nil {
			return err
		}
		after, err := n.commits()
		if err != nil {
			return err
		}
		// Every commit of the run, the replies' included.
		f.perCommit[s] = append(f.perCommit[s], (after-before)/float64(lr.Accepted))
		// Until every acknowledgement (RK) reached its sender.
		f.replied[s] = append(f.replied[s], float64(lr.Accepted)/(lr.Seconds+lr.DrainSeconds))
		f.rate[s] = append(f.rate[s], lr.PerSecond)
		f.p50[s] = append(f.p50[s], lr.P50)
		f.p95[s] = append(f.p95[s], lr.P95)
		f.cmds[s] = nodeCmd + "; " + strings.Replace(command, n.url, "http://127.0.0.1:P", 1)
	}
	return nil
}

// otherInbox is an inbox measured beside the node's: a process that
// listens on 127.0.0.1, prints {"event":"ready","base":URL} on stdout once
// it does, and exits when its stdin closes.
type otherInbox struct {
	name   string // in the figures' names: "<name> accepted/s, N senders"
	group  string
	path   string // the inbox's path on base
	object string // what loadgen offers it (-object)
	// command is the process's command line, given the directory of the
	// binaries bench/run built, and shown is how the figures name it.
	command func(bin string) []string
	shown   string
	// ready, when set, says why the inbox cannot be measured here.
	ready func() error
}

// limitInbox is bench.LimitInbox in its own process: the limit's work
// behind HTTP, taking the node's load from the same load generator.
func limitInbox() otherInbox {
	return otherInbox{name: "limit inbox", group: "limit-inbox", path: bench.LimitInboxPath, object: "report",
		command: func(bin string) []string { return []string{filepath.Join(bin, "limitinbox")} },
		shown:   "go run ./bench/limitinbox"}
}

// jsInboxes are the Node.js inboxes the node's is compared with. The
// interop peer takes the node's own load, Offers of a VulnerabilityReport
// (it verifies before it parses, and answers 202 even when Fedify's
// vocabulary refuses the Vultron type); the plain Fedify inbox answers
// those with 400, so it takes the same Offers with the report as an
// ActivityStreams Note.
func jsInboxes() []otherInbox {
	return []otherInbox{
		jsInbox("interop peer", "interop-peer", "federation_test/peer/peer.mjs", "/users/finder/inbox", "report", "peer-deps"),
		jsInbox("Fedify inbox", "fedify", "bench/fedify-inbox/inbox.mjs", "/users/receiver/inbox", "note", "bench-deps"),
	}
}

// jsInbox is a Node.js script run from the repository root whose npm
// packages the make target deps installs.
func jsInbox(name, group, script, path, object, deps string) otherInbox {
	return otherInbox{name: name, group: group, path: path, object: object,
		command: func(string) []string { return []string{"node", script} },
		shown:   "node " + script,
		ready: func() error {
			if _, err := os.Stat(script); err != nil {
				return fmt.Errorf("%s is missing", script)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules")); err != nil {
				return fmt.Errorf("the npm packages of %s are not installed (make %s)", script, deps)
			}
			if _, err := exec.LookPath("node"); err != nil {
				return errors.New("node is not on PATH")
			}
			return nil
		}}
}

// otherInboxRun sends the node's inbox load to another inbox: one process,
// as for the node, taking each number of senders in turn.
func otherInboxRun(bin string, count int, p otherInbox, f *inboxFigures) error {
	base, stop, err := startInbox(p.command(bin))
	if err != nil {
		return err
	}
	defer stop()
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("%s is ready at %q, not a URL: %w", p.shown, base, err)
	}
	for _, s := range senderCounts() {
		lr, command, err := loadgen(bin, base+p.path, s, count, false, p.object)
		if err != nil {
			return err
		}
		f.others[p.name][s] = append(f.others[p.name][s], lr.PerSecond)
		f.otherCmds[p.name][s] = p.shown + "; " + strings.Replace(command, u.Host, "127.0.0.1:P", 1)
	}
	return nil
}

// startInbox starts another inbox's process and waits (at most a minute)
// for its ready line; stop closes its stdin and waits for it to exit.
func startInbox(args []string) (base string, stop func(), err error) {
	script := strings.Join(args, " ")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return "", nil, err
	}
	stop = func() {
		stdin.Close()
		cmd.Wait()
		cancel()
	}
	ready := make(chan string, 1)
	go func() {
		defer close(ready)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev struct{ Event, Base string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "ready" {
				ready <- ev.Base
				break
			}
		}
		io.Copy(io.Discard, stdout) // the interop peer logs every activity it receives
	}()
	select {
	case b, ok := <-ready:
		if ok && b != "" {
			return b, stop, nil
		}
		stop()
		return "", nil, fmt.Errorf("%s exited without printing its ready line", script)
	case <-time.After(time.Minute):
		stop()
		return "", nil, fmt.Errorf("%s did not print its ready line within a minute", script)
	}
}

func bigCaseNode(tmp, bin string, runs int, sizes []int) error {
	for _, e := range sizes {
		var p50s, p95s, up50s, up95s, rssv, sizes []float64
		var nodeURL string
		var caseID string
		for r := range runs {
			dir := filepath.Join(tmp, fmt.Sprintf("big-%d-%d", e, r))
			var bc *bench.BigCase
			err := prepareStore(dir, "", func(db *store.DB) error {
				var err error
				port := "7001"
				bc, err = bench.BuildCase("http://127.0.0.1:"+port, "big", 2000, e)
				if err != nil {
					return err
				}
				c, rep, err := bc.Apply()
				if err != nil {
					return err
				}
				return bc.Store(context.Background(), db, c, rep)
			})
			if err != nil {
				return err
			}
			caseID = bc.CaseID
			n, err := startNode(bin, dir)
			if err != nil {
				return err
			}
			nodeURL = n.url
			path := "/api/cases/" + url.PathEscape(bc.CaseID)
			var lat []float64
			var size int
			for range 40 {
				t0 := time.Now()
				st, sz, err := n.get(path)
				if err != nil || st != http.StatusOK {
					n.stop()
					return fmt.Errorf("GET %s: %d %v", path, st, err)
				}
				lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
				size = sz
			}
			slices.Sort(lat)
			p50s = append(p50s, lat[len(lat)/2])
			p95s = append(p95s, lat[int(0.95*float64(len(lat)-1))])
			// The dashboard's case page, with a logged-in session.
			page := "/ui/cases/" + url.PathEscape(bc.CaseID)
			web, err := n.dashboard()
			if err != nil {
				n.stop()
				return err
			}
			var ulat []float64
			for range 40 {
				t0 := time.Now()
				resp, err := web.Get(n.url + page)
				if err != nil {
					n.stop()
					return fmt.Errorf("GET %s: %w", page, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					n.stop()
					return fmt.Errorf("GET %s: %d", page, resp.StatusCode)
				}
				ulat = append(ulat, float64(time.Since(t0).Microseconds())/1000)
			}
			slices.Sort(ulat)
			up50s = append(up50s, ulat[len(ulat)/2])
			up95s = append(up95s, ulat[int(0.95*float64(len(ulat)-1))])
			rssv = append(rssv, n.rss())
			sizes = append(sizes, float64(size)/1024/1024)
			n.stop()
		}
		_ = nodeURL
		cmd := nodeCmd + " (D holding a case of 2000 participants and " + strconv.Itoa(e) + " entries); 40 × curl -H 'Authorization: Bearer …' http://127.0.0.1:P/api/cases/" + url.PathEscape(caseID)
		record("bigcase-view", fmt.Sprintf("big case %d entries GET /api/cases/{id} p50 ms", e), float64(e), "ms", p50s, cmd)
		record("bigcase-view", fmt.Sprintf("big case %d entries GET /api/cases/{id} p95 ms", e), float64(e), "ms", p95s, cmd)
		record("bigcase-view", fmt.Sprintf("big case %d entries response MiB", e), float64(e), "MiB", sizes, cmd)
		ucmd := nodeCmd + " (D holding a case of 2000 participants and " + strconv.Itoa(e) + " entries); a viewer enrolled with a password; 40 × GET http://127.0.0.1:P/ui/cases/" + url.PathEscape(caseID) + " with the session cookie"
		record("bigcase-page", fmt.Sprintf("big case %d entries dashboard case page p50 ms", e), float64(e), "ms", up50s, ucmd)
		record("bigcase-page", fmt.Sprintf("big case %d entries dashboard case page p95 ms", e), float64(e), "ms", up95s, ucmd)
		record("bigcase-rss", fmt.Sprintf("big case %d entries node RSS MiB", e), float64(e), "MiB", rssv, cmd+"; VmRSS of /proc/PID/status")
	}
	fmt.Println()
	return nil
}

func footprint(tmp, bin string, runs int, nCases []int) error {
	var idle []float64
	for r := range runs {
		n, err := startNode(bin, filepath.Join(tmp, fmt.Sprintf("idle-%d", r)))
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		idle = append(idle, n.rss())
		n.stop()
	}
	record("footprint", "idle RSS MiB", 0, "MiB", idle, nodeCmd+"; sleep 2; grep VmRSS /proc/PID/status")
	for _, nc := range nCases {
		var rssv, startup, firstStart, firstRSS, perCase []float64
		for r := range runs {
			dir := filepath.Join(tmp, fmt.Sprintf("cases-%d-%d", nc, r))
			if err := prepareStore(dir, "", func(db *store.DB) error {
				return bench.StoreManyCases(context.Background(), db, "http://127.0.0.1:7001", nc, 3, 5)
			}); err != nil {
				return err
			}
			// The store was written through the store API, as a node
			// before the indexes of later releases would have left it: the
			// first start builds them (once, over every case). The second
			// is a restart, which is what the node costs from then on.
			for start := range 2 {
				n, err := startNode(bin, dir)
				if err != nil {
					return err
				}
				if st, _, err := n.get("/api/cases"); err != nil || st != http.StatusOK {
					n.stop()
					return fmt.Errorf("GET /api/cases: %d %v", st, err)
				}
				if start == 0 {
					firstStart, firstRSS = append(firstStart, n.start.Seconds()), append(firstRSS, n.rss())
				} else {
					startup, rssv = append(startup, n.start.Seconds()), append(rssv, n.rss())
				}
				n.stop()
			}
			if fi, err := os.Stat(filepath.Join(dir, "vultron.db")); err == nil {
				perCase = append(perCase, float64(fi.Size())/float64(nc))
			}
		}
		cmd := nodeCmd + " (D holding " + strconv.Itoa(nc) + " open cases of 3 participants and 5 entries)"
		record("footprint", fmt.Sprintf("RSS MiB with %d open cases (after GET /api/cases)", nc), float64(nc), "MiB", rssv, cmd+", started before once; curl …/api/cases; grep VmRSS /proc/PID/status")
		record("footprint", fmt.Sprintf("start-up s with %d cases (exec to /readyz 200)", nc), float64(nc), "s", startup, cmd+", started before once")
		record("footprint", fmt.Sprintf("first start-up s with %d cases, indexes built (exec to /readyz 200)", nc), float64(nc), "s", firstStart, cmd+", never started")
		record("footprint", fmt.Sprintf("RSS MiB after the first start with %d cases (after GET /api/cases)", nc), float64(nc), "MiB", firstRSS, cmd+", never started; curl …/api/cases; grep VmRSS /proc/PID/status")
		record("footprint", fmt.Sprintf("bbolt bytes per case, %d cases", nc), float64(nc), "bytes", perCase, cmd+"; stat D/vultron.db")
	}
	return nil
}
