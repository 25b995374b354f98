package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/node"
)

func runServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("serve", "vultron serve [flags]",
		"Run a Vultron node: its actors' inboxes and outboxes, WebFinger and NodeInfo, and the\n"+
			"delivery workers. Settings also come from VULTRON_<FLAG> environment variables and\n"+
			"from the JSON file given by --config (keys are the flag names).", env)
	configPath := fs.String("config", "", "JSON file of settings (keys are the flag names)")
	dataDir := fs.String("data", "./data", "data directory: vultron.db, keys/, api-token")
	listen := fs.String("listen", "127.0.0.1:7001", "address to serve HTTP on")
	publicURL := fs.String("public-url", "", "base URL peers reach this node at (default http://<listen>)")
	var actors listFlag
	fs.Var(&actors, "actor", "local actor NAME:TYPE, repeatable (default vendor:Organization)")
	logFormat := fs.String("log-format", "json", "log format: json or console")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	window := fs.Duration("date-window", actor.DefaultWindow, "how far a signed Date may be from this node's clock (at most 15m)")
	allowPrivate := fs.Bool("allow-private-peers", false, "allow peers on loopback and private addresses (tests and local set-ups only)")
	maxBody := fs.Int64("max-body", 256<<10, "largest inbox or outbox body in bytes")
	workers := fs.Int("delivery-workers", 8, "deliveries sent at once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("serve takes no arguments, got %q", fs.Arg(0))
	}
	if err := applySettings(fs, env.getenv, *configPath); err != nil {
		return err
	}
	log, err := newLogger(env.stderr, *logFormat, *logLevel)
	if err != nil {
		return usageError("%v", err)
	}
	if len(actors) == 0 {
		actors = listFlag{"vendor:Organization"}
	}
	var acs []node.ActorConfig
	for _, spec := range actors {
		name, typ, err := actor.ParseActorSpec(spec)
		if err != nil {
			return usageError("%v", err)
		}
		acs = append(acs, node.ActorConfig{Name: name, Type: typ})
	}
	if *publicURL == "" {
		host, port, err := net.SplitHostPort(*listen)
		if err != nil {
			return usageError("listen address %q: %v", *listen, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			return usageError("--public-url is required when listening on all interfaces (%s)", *listen)
		}
		*publicURL = "http://" + net.JoinHostPort(host, port)
	}
	n, err := node.New(ctx, node.Config{
		DataDir:           *dataDir,
		Listen:            *listen,
		PublicURL:         *publicURL,
		Actors:            acs,
		DateWindow:        *window,
		AllowPrivatePeers: *allowPrivate,
		MaxInboxBytes:     *maxBody,
		DeliveryWorkers:   *workers,
		Version:           version,
		Logger:            log,
		Notice:            env.stdout,
	})
	if err != nil {
		return err
	}
	return n.Serve(ctx)
}

// newLogger returns the node's logger: JSON lines by default, a readable
// console format for people.
func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Logger{}, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Logger{}, fmt.Errorf("log format %q is not json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("svc", "vultron").Logger(), nil
}
