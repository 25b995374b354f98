package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	env := &environment{stdout: out, stderr: out, getenv: func(string) string { return "" }}
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, env, []string{"--config", example, "--data", t.TempDir(), "--listen", "127.0.0.1:0"})
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "node started") {
		select {
		case err := <-done:
			t.Fatalf("serve with the example config stopped: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("serve did not start:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
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
