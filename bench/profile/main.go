// Command profile runs a node in-process under the CPU profiler while the
// load generator (a separate process) sends it signed Offers, so that the
// inbox benchmark's time can be attributed:
//
//	go build -o /tmp/loadgen ./bench/loadgen
//	go run ./bench/profile -loadgen /tmp/loadgen -senders 64 -count 4000 -o /tmp/inbox.prof
//	go tool pprof -top /tmp/inbox.prof
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/node"
)

func main() {
	lg := flag.String("loadgen", "", "path of the built load generator (required)")
	senders := flag.Int("senders", 64, "concurrent senders")
	count := flag.Int("count", 4000, "activities to send")
	out := flag.String("o", "inbox.prof", "CPU profile to write")
	workers := flag.Int("delivery-workers", 0, "the node's delivery workers (0: its default)")
	keep := flag.String("keep", "", "directory to keep the node's data in after the run, for a look at its store (default: a temporary one, removed)")
	ed := flag.Bool("ed25519", true, "the senders say they verify RFC 9421 Ed25519, so the node signs its replies with Ed25519 (false: RSA)")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		// As vultron serve runs the node.
		debug.SetGCPercent(node.DefaultGCPercent)
	}
	if err := run(*lg, *senders, *count, *workers, *ed, *out, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(lg string, senders, count, workers int, ed bool, out, keep string) error {
	dir := keep
	if dir == "" {
		d, err := os.MkdirTemp("", "vultron-profile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	u := "http://" + ln.Addr().String()
	n, err := node.New(context.Background(), node.Config{DataDir: dir, Listener: ln, PublicURL: u,
		Actors: []node.ActorConfig{{Name: "vendor", Type: actor.Organization}}, AllowPrivatePeers: true, DeliveryWorkers: workers,
		Logger: zerolog.Nop(), Notice: io.Discard})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	cmd := exec.Command(lg, "-inbox", u+"/actors/vendor/inbox", "-senders", strconv.Itoa(senders), "-count", strconv.Itoa(count), "-drain", "1m", "-ed25519="+strconv.FormatBool(ed))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	commits, written := n.Store().Commits(), bytesWritten()
	pages, _ := n.Store().PageWrites()
	err = cmd.Run()
	time.Sleep(100 * time.Millisecond)
	pprof.StopCPUProfile()
	ran := n.Store().Commits() - commits
	fmt.Printf("store commits during the run: %d (%.2f per activity)\n", ran, float64(ran)/float64(count))
	if p, ok := n.Store().PageWrites(); ok && ran > 0 {
		fmt.Printf("page writes: %.1f per commit, %.1f per activity\n", float64(p-pages)/float64(ran), float64(p-pages)/float64(count))
	}
	if written >= 0 {
		fmt.Printf("bytes written to storage: %.1f KiB per activity\n", float64(bytesWritten()-written)/1024/float64(count))
	}
	f.Close()
	cancel()
	<-done
	return err
}

// bytesWritten returns what this process has caused to be written to
// storage (write_bytes of /proc/self/io), or -1 where that is not known.
func bytesWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
