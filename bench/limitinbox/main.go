// Command limitinbox serves bench.LimitInbox, the inbox benchmark's limit
// behind HTTP, on a free port of 127.0.0.1, so that bench/run can send it
// the node's load from the load generator in the same run as the node:
//
//	go run ./bench/limitinbox
//	go run ./bench/loadgen -inbox http://127.0.0.1:P/actors/vendor/inbox -senders 16 -replies=false
//
// Once it listens it prints {"event":"ready","base":URL} on stdout; it
// stops when its standard input closes. Its store lives in a temporary
// directory removed at exit. It collects garbage as `vultron serve` does
// (node.DefaultGCPercent) unless GOGC says otherwise.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"

	"github.com/openvultron/vultron/bench"
	"github.com/openvultron/vultron/node"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "limitinbox:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(node.DefaultGCPercent)
	}
	dir, err := os.MkdirTemp("", "vultron-limit-inbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	li, err := bench.StartLimitInbox(dir, ln)
	if err != nil {
		return err
	}
	defer li.Close()
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{"event": "ready", "base": li.URL}); err != nil {
		return err
	}
	io.Copy(io.Discard, os.Stdin)
	return nil
}
