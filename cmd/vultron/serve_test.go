package main

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// TestServeExampleConfig starts (and at once stops) a node from
// deploy/vultron.example.json: every key is a serve flag, the values are
// valid, and the production example federates by allow-list.
func TestServeExampleConfig(t *testing.T) {
	example := filepath.Join("..", "..", "deploy", "vultron.example.json")
	file, err := readConfigFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if got := file["federation"]; len(got) != 1 || got[0] != "allowlist" {
		t.Errorf("example federation = %v, want allowlist", got)
	}
	if len(file["allow-peer"]) == 0 {
		t.Error("example config names no allowed peer")
	}
	// It listens on loopback behind a reverse proxy on the same host, so
	// that proxy must be trusted or every peer shares one client IP.
	if got := strings.Join(file["trusted-proxy"], " "); got != "127.0.0.1 ::1" {
		t.Errorf("example trusted proxies = %q, want the loopback proxy (127.0.0.1 ::1)", got)
	}
	serveUntilStarted(t, func(string) string { return "" }, "--config", example, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
}

// serveUntilStarted runs serve with args and the environment getenv until
// the node has started, then stops it, and returns what it printed.
func serveUntilStarted(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	return serveWhileStarted(t, getenv, nil, args...)
}

// serveWhileStarted is serveUntilStarted that calls during, with what the
// node printed so far, once it started and before it is stopped.
func serveWhileStarted(t *testing.T, getenv func(string) string, during func(out *syncBuffer), args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	env := &environment{stdout: out, stderr: out, getenv: getenv}
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, env, args) }()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "node started") {
		select {
		case err := <-done:
			t.Fatalf("serve %v stopped: %v\n%s", args, err, out.String())
		case <-deadline:
			t.Fatalf("serve did not start:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if during != nil {
		during(out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return out.String()
}

// syncBuffer is a strings.Builder safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeFederationFlags checks the refusals of bad federation settings.
func TestServeFederationFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--federation", "closed"}, `federation mode "closed" is not open or allowlist`},
		{[]string{"--federation", "allowlist"}, "needs at least one --allow-peer"},
		{[]string{"--peer-rate", "-1"}, "must not be negative"},
		{[]string{"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "proxy.example"}, `--trusted-proxy: trusted proxy "proxy.example" is not a CIDR prefix`},
		{[]string{"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy-header", "X-Real-IP"}, `--trusted-proxy-header: forwarding header "X-Real-IP" is not Forwarded or X-Forwarded-For`},
		{[]string{"--max-embargo", "0d"}, "--max-embargo must be positive"},
		{[]string{"--default-embargo", "400d"}, "the default embargo (400d) is longer than --max-embargo (365d)"},
		{[]string{"--default-embargo", "100d", "--max-embargo", "90d"}, "the default embargo (100d) is longer than --max-embargo (90d)"},
		{[]string{"--replica-check-first", "0s"}, "want 0 < --replica-check-first <= --replica-check-max"},
		{[]string{"--replica-check-first", "2h", "--replica-check-max", "1h"}, "want 0 < --replica-check-first <= --replica-check-max"},
		{[]string{"--replica-retry-first", "1m", "--replica-retry-max", "10s"}, "0 < --replica-retry-first <= --replica-retry-max"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out strings.Builder
			env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
			args := append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"}, tt.args...)
			err := runServe(t.Context(), env, args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestConsoleLogColours writes the console log format with colours to a
// terminal only: a file or a pipe gets plain text.
func TestConsoleLogColours(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pipe strings.Builder
	for _, w := range []io.Writer{f, &pipe} {
		log, err := newLogger(w, "console", "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Str("actor", "vendor").Msg("outbox accepted")
	}
	written, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"file": string(written), "pipe": pipe.String()} {
		if strings.Contains(got, "\x1b[") || !strings.Contains(got, "outbox accepted") || !strings.Contains(got, "actor=vendor") {
			t.Errorf("console log to a %s: %q, want plain text", name, got)
		}
	}
	if !isTerminal(&terminalFile{}) {
		t.Error("a terminal is not given colours")
	}
}

// terminalFile stands for a character device.
type terminalFile struct{}

func (terminalFile) Write(p []byte) (int, error) { return len(p), nil }
func (terminalFile) Stat() (os.FileInfo, error)  { return charDevice{}, nil }

type charDevice struct{ os.FileInfo }

func (charDevice) Mode() os.FileMode { return os.ModeDevice | os.ModeCharDevice }

// TestServeMetricsTokenFile: the metrics token goes where
// VULTRON_METRICS_TOKEN_FILE (or --metrics-token-file) says, created 0600,
// and serve says where without printing it.
func TestServeMetricsTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scrape-token")
	out := serveUntilStarted(t, func(k string) string {
		if k == "VULTRON_METRICS_TOKEN_FILE" {
			return path
		}
		return ""
	}, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("metrics token file %s: %v %v, want mode 0600", path, info, err)
	}
	token, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Metrics token created in "+path) || strings.Contains(out, strings.TrimSpace(string(token))) {
		t.Errorf("serve's output should name %s and not print the token:\n%s", path, out)
	}
}

// TestServeRefusesBadValuesBeforeCreatingAnything gives serve one bad
// value at a time: each is a bad command line (one sentence, exit 2)
// refused before the data directory, its keys and tokens are created, so
// nothing is printed as shown once.
func TestServeRefusesBadValuesBeforeCreatingAnything(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags func(dataDir string) []string
		want  string
	}{
		{"webhook without scheme", func(string) []string { return []string{"--webhook", "tickets.example.org/hooks"} },
			`webhook URL "tickets.example.org/hooks" is not an http or https URL`},
		{"allowed peer as URL", func(string) []string {
			return []string{"--federation", "allowlist", "--allow-peer", "https://peer.example"}
		}, `allowed peer "https://peer.example" is not a host or host:port`},
		{"OIDC issuer without scheme", func(string) []string {
			return []string{"--oidc-issuer", "idp.example", "--oidc-client-id", "vultron", "--oidc-client-secret-file", secret, "--oidc-role-map", "psirt=analyst"}
		}, `OIDC issuer "idp.example" is not an http(s) URL`},
		{"public URL without scheme", func(string) []string { return []string{"--public-url", "vultron.example"} }, `public URL "vultron.example"`},
		{"intelligence feed of another scheme", func(string) []string { return []string{"--intel-feed", "ftp://feeds.example/kev.json"} },
			`--intel-feed "ftp://feeds.example/kev.json" is neither an http(s) URL nor a file`},
		{"listen address", func(string) []string { return []string{"--public-url", "http://127.0.0.1:7001", "--listen", "7001"} }, `listen address "7001"`},
		{"metrics token in the API token file", func(dataDir string) []string {
			return []string{"--metrics-token-file", filepath.Join(dataDir, "api-token")}
		}, "is the API token file; point --metrics-token-file at another file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", dataDir, "--listen", "127.0.0.1:0"}, tt.flags(dataDir)...)
			code, out, errOut := runCapture(t, args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 saying %q in one line, and nothing on stdout", code, errOut, out, tt.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("serve created its data directory before refusing: %v", err)
			}
		})
	}
}

// TestServeRefusesTheAPITokenFileAsMetricsToken is the operator who
// points --metrics-token-file at the API token file of a node's data
// directory: refused, with a hint that names another file rather than
// deleting this one (which would replace the admin's token), and the data
// directory is left as it was.
func TestServeRefusesTheAPITokenFileAsMetricsToken(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("t", 43) + "\n"
	if err := os.WriteFile(filepath.Join("data", "api-token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCapture(t, "serve", "--data", "data", "--listen", "127.0.0.1:0", "--metrics-token-file", "data/api-token")
	if code != 2 || !strings.Contains(errOut, "data/api-token is the API token file; point --metrics-token-file at another file") ||
		strings.Contains(errOut, "delete") || strings.Count(errOut, "\n") != 1 || out != "" {
		t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and one sentence that points elsewhere and deletes nothing", code, errOut, out)
	}
	entries, err := os.ReadDir("data")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join("data", "api-token")); err != nil || string(got) != token || len(entries) != 1 {
		t.Errorf("the data directory changed: %d entries, api-token %q, %v", len(entries), got, err)
	}
}

// TestServeWithoutPolicyOutlivesSIGHUP: SIGHUP reads a node's policy
// again; a node without one says it has nothing to read and runs on,
// rather than ending as the signal's default would.
func TestServeWithoutPolicyOutlivesSIGHUP(t *testing.T) {
	serveWhileStarted(t, func(string) string { return "" }, func(out *syncBuffer) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
		for !strings.Contains(out.String(), "no --policy to read again") {
			select {
			case <-deadline:
				t.Fatalf("serve did not answer SIGHUP:\n%s", out.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
}

// TestServeOnATakenAddressCreatesNothing is a second node started on the
// address of one that runs: serve says the address is taken and exits
// before it creates the data directory, its keys and tokens, so that no
// API token or enrollment link is printed "shown once" for a node that
// never served.
func TestServeOnATakenAddressCreatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runCapture(t, "serve", "--data", dataDir, "--listen", ln.Addr().String())
	want := "cannot listen on " + ln.Addr().String() + ": the address is in use by another process; stop it or choose another address with --listen."
	if code != 1 || !strings.HasSuffix(errOut, "\nvultron serve: "+want+"\n") || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout and one sentence saying %q", code, out, errOut, want)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("serve created its data directory before finding its address taken: %v", err)
	}
}

// TestServeOnADamagedStoreSaysSo: a store file with a flipped byte in a
// page that every open reads (here the type of the root bucket's page)
// stops serve with one sentence that says the store is damaged and how to
// restore and check it, and exit status 1. Before, bbolt panicked on the
// page when the store opened, and serve died with a goroutine dump.
func TestServeOnADamagedStoreSaysSo(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keys, err := store.LoadDataKeys(dataDir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, "vultron.db")
	db, err := store.Open(path, store.Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	flipRootPageType(t, path)

	var code int
	var out, errOut string
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("serve panicked on a damaged store: %v", r)
			}
		}()
		code, out, errOut = runCapture(t, "serve", "--data", dataDir, "--listen", "127.0.0.1:0")
	}()
	t.Logf("stderr: %s", errOut)
	want := "vultron serve: the store " + path + " is damaged, so the node does not start: the root bucket: page "
	last := errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:]
	if code != 1 || out != "" || !strings.HasPrefix(last, want) || strings.Count(last, "\n") != 1 ||
		!strings.Contains(last, "restore the store from a backup") || !strings.Contains(last, "vultron store copy --from bolt:BACKUP --to bolt:/tmp/check.db --data "+dataDir+".\n") {
		t.Errorf("exit %d, stdout %q, last line of stderr %q; want exit 1, nothing on stdout and one sentence starting %q, saying to restore the store from a backup and how to check it", code, out, last, want)
	}
}

// flipRootPageType inverts the low byte of the page type of the root
// bucket's page of the bbolt file at path, as the newest of its two meta
// pages names it.
func flipRootPageType(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta := func(off int64) (pageSize, root, txid uint64) {
		b := make([]byte, 80)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		m := b[16:] // after the page header
		return uint64(binary.NativeEndian.Uint32(m[8:])), binary.NativeEndian.Uint64(m[16:]), binary.NativeEndian.Uint64(m[48:])
	}
	ps, root, txid := meta(0)
	if _, root1, txid1 := meta(int64(ps)); txid1 > txid {
		root = root1
	}
	b := make([]byte, 1)
	off := int64(root*ps) + 8 // the page header's flags
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestNodeURLIsNeverSeenHalfWritten is ready --data reading node-url
// while serve writes it again at a start: the file is replaced whole, so
// the reader sees the old URL or the new one, never an empty file it
// would take for a URL that does not parse, and it is 0600 even where an
// earlier file had another mode.
func TestNodeURLIsNeverSeenHalfWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, nodeURLFile)
	if err := os.WriteFile(path, []byte("http://127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := range 3000 {
			if _, err := writeNodeURL(dir, &net.TCPAddr{IP: net.IPv4zero, Port: 7000 + i%100}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writeNodeURL: %v", err)
			}
			info, err := os.Stat(path)
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("node-url: %v, mode %v; want 0600", err, info.Mode().Perm())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("the data directory holds %d files after the writes, want node-url alone", len(entries))
			}
			return
		default:
		}
		if u, err := readNodeURL(dir); err != nil || u == "" {
			t.Fatalf("read node-url while serve writes it: %q, %v", u, err)
		}
	}
}

// TestNodeURLRemovedAtStop: serve removes the node-url it wrote when it
// stops, so that a command given --data afterwards says that no node
// serves there rather than send the directory's API token to whatever
// listens on that port next.
func TestNodeURLRemovedAtStop(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	serveWhileStarted(t, func(string) string { return "" }, func(*syncBuffer) {
		if _, err := os.Stat(filepath.Join(data, nodeURLFile)); err != nil {
			t.Errorf("node-url while serve runs: %v", err)
		}
	}, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "console")
	if _, err := os.Stat(filepath.Join(data, nodeURLFile)); !os.IsNotExist(err) {
		t.Errorf("node-url after serve stopped: %v; want it removed", err)
	}
	code, _, errOut := runCapture(t, "case", "list", "--data", data)
	if code == 0 || !strings.Contains(errOut, data+" has no "+nodeURLFile) {
		t.Errorf("case list --data of a stopped node: exit %d, stderr %q; want it to say that no node serves there", code, errOut)
	}
}
