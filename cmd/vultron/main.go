// Command vultron runs a Vultron Protocol node and is the command-line
// interface to one. Each subcommand lives in its own file in this package.
// serve parses flags and wires the project's packages together; the other
// commands are a client of a node's JSON API (client.go): they build
// activities, submit them to an actor's outbox, wait until the case records
// them (actions.go) and print what the node answers. The protocol's rules
// belong to the node, which decides; the client only finds the ids an
// action refers to and says the node's sentence. The API's answers are
// decoded into package api's types, which the node writes; --json prints
// them as the node answered.
//
// Usage:
//
//	vultron <command> [flags] [arguments]
//	vultron help [command]
//	vultron <command> -h
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// command is one subcommand of the vultron binary.
type command struct {
	name    string
	summary string // one line, shown by "vultron help"
	// run executes the command with the arguments that follow its name.
	// It returns errUsage (possibly wrapped) for a bad command line, any
	// other error for a failure; both are printed as one sentence.
	run func(ctx context.Context, env *environment, args []string) error
}

// environment is what a command may touch of the outside world. Tests
// replace the streams to capture output.
type environment struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stdin is what vultron login --with-token reads; nil when a command
	// has no input.
	stdin io.Reader
}

// errUsage marks an error caused by the command line rather than by the
// work the command does; it makes the binary exit with status 2.
var errUsage = errors.New("usage")

// usageError reports a bad command line in one sentence.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// exitStatusError is a failure that exits with a status of its own instead
// of 1, for a command whose statuses scripts tell apart (migrate --check).
type exitStatusError struct {
	status int
	err    error
}

func (e *exitStatusError) Error() string { return e.err.Error() }
func (e *exitStatusError) Unwrap() error { return e.err }

// commands lists every subcommand. Keep it sorted by name.
func commands() []command {
	cmds := []command{
		{name: "actor", summary: "rotate a local actor's key (the old key stays accepted for an overlap)", run: runActor},
		{name: "audit", summary: "page through the node's hash-chained audit log, or verify its chain", run: runAudit},
		{name: "backup", summary: "take a backup of a running node's bbolt store into a new file, and check it", run: runBackup},
		{name: "calendar", summary: "print the iCalendar feeds of the node's embargoes, for calendar clients", run: runCalendar},
		{name: "classify", summary: "classify Vultron activities in JSON files by protocol semantic and message type", run: runClassify},
		{name: "version", summary: "print the version of this binary", run: runVersion},
		{name: "serve", summary: "run a node: inboxes, outboxes, WebFinger, NodeInfo and delivery workers", run: runServe},
		{name: "case", summary: "list, show, wait for, resync a case or print its ledger; engage (RA), defer (RD), close (RC), note, cve, transfer, link, engagement", run: runCase},
		{name: "due", summary: "list the deadlines of the node's cases and reports, soonest first, or only the overdue ones", run: runDue},
		{name: "deliveries", summary: "list a node's pending deliveries and dead letters, or retry a dead letter", run: runDeliveries},
		{name: "webhooks", summary: "list a node's webhooks and whether each is paused, or resume a paused one", run: runWebhooks},
		{name: "report", summary: "Report Management: submit a report (RS), validate (RV), invalidate (RI) or close (RC) one", run: runReport},
		{name: "embargo", summary: "Embargo Management: propose (EP/EV), accept (EA/EC), reject (ER/EJ) or terminate (ET) an embargo", run: runEmbargo},
		{name: "participant", summary: "invite, suggest or remove case participants; accept or decline an invitation", run: runParticipant},
		{name: "status", summary: "Case State: fix ready (CF), fix deployed (CD), public (CP), exploit public (CX), attacks (CA)", run: runStatus},
		{name: "ready", summary: "wait until a node serves (for scripts that start one in the background)", run: runReady},
		{name: "rotate-key", summary: "replace the node data key of a stopped node and re-encrypt its store under the new one", run: runRotateKey},
		{name: "migrate", summary: "bring a store to this binary's version: PostgreSQL tables, or a bbolt file", run: runMigrate},
		{name: "store", summary: "copy a node's store between bbolt and PostgreSQL (store copy --from URL --to URL)", run: runStore},
		{name: "policy", summary: "check an automation policy file, show a node's, or explain which rules fire in a case", run: runPolicy},
		{name: "simulate", summary: "simulate many organizations and cases under a policy, or at random; desiderata met and load", run: runSimulate},
		{name: "follow", summary: "follow an actor (Follow); it accepts at once or once its admin decides", run: runFollow},
		{name: "unfollow", summary: "stop following an actor (Undo of the Follow)", run: runUnfollow},
		{name: "followers", summary: "list the acting actor's followers, pending Follows or followings; accept or reject a Follow", run: runFollowers},
		{name: "announce", summary: "share an advisory with the acting actor's followers (Announce)", run: runAnnounce},
		{name: "product", summary: "state a product's status in a case: affected, fixed, not-affected, under-investigation", run: runProduct},
		{name: "advisory", summary: "the case's advisory: draft, share for review, review, publication time, publish", run: runAdvisory},
		{name: "model", summary: "print the protocol's state models, histories and desiderata baselines", run: runModel},
		{name: "user", summary: "manage the node's users: add (a token and an enrollment link), list, role, disable, enable, remove, reset-2fa, enroll, sessions", run: runUser},
		{name: "token", summary: "create, list or revoke tokens with scopes (read, act, admin, metrics, calendar)", run: runToken},
		{name: "login", summary: "keep a token of a node for the other commands, in your configuration directory", run: runLogin},
		{name: "logout", summary: "forget (and with --revoke, revoke) the token a login keeps", run: runLogout},
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runVersion(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet("version", "vultron version", "Print the version of this binary.", env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("version takes no arguments")
	}
	fmt.Fprintf(env.stdout, "vultron %s\n", version)
	return nil
}

// newFlagSet returns a flag set whose -h output names the command, its
// synopsis and a description, and which reports errors instead of exiting.
func newFlagSet(name, synopsis, description string, env *environment) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: %s\n\n%s\n", synopsis, description)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(env.stderr, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with fs. Flags may come before or after the
// command's arguments ("case show X --json"). It returns flag.ErrHelp for
// -h, once it has printed the command's usage, and a usage error of one
// sentence naming the flag for a flag the command does not have, a flag
// without its value or a value the flag refuses.
func parseFlags(fs *flag.FlagSet, args []string) error {
	ordered, err := flagsFirst(fs, args)
	if err != nil {
		return err
	}
	// The flag package prints its error and the usage; only -h wants the
	// usage, and the error is said once, by run.
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err = fs.Parse(ordered)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	}
	return usageError("%s; see vultron %s -h", flagValueError(fs, err), fs.Name())
}

// flagValueError rewrites the flag package's "invalid value "5" for flag
// -timeout: parse error", which does not say what the flag takes, as a
// sentence that does; other errors are returned as they are.
func flagValueError(fs *flag.FlagSet, err error) error {
	m := parseErrorPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f := fs.Lookup(m[2])
	if f == nil {
		return err
	}
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	var takes string
	switch getter.Get().(type) {
	case time.Duration:
		takes = "takes a duration with its unit, such as 30s, 2m or 1h"
	case int, int64, uint, uint64:
		takes = "takes a whole number"
	case float64:
		takes = "takes a number"
	case bool:
		takes = "is true or false"
	default:
		return err
	}
	return fmt.Errorf("--%s %s, not %q", f.Name, takes, m[1])
}

// parseErrorPattern is the flag package's error for a value its type
// cannot parse.
var parseErrorPattern = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): parse error$`)

// flagsFirst moves the flags of args before its positional arguments, so
// that the flag package, which stops at the first argument, sees them all.
// Everything after "--" stays positional. A flag fs does not define (but
// -h and -help) is a usage error, and so is a flag that takes a value but
// ends args: the flag package would take the "--" put before the
// positional arguments for its value.
func flagsFirst(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil && name != "h" && name != "help" {
			flagName, _, _ := strings.Cut(a, "=")
			return nil, usageError("unknown flag %s for %s; see vultron %s -h", flagName, fs.Name(), fs.Name())
		}
		if f != nil && !hasValue && !isBoolFlag(f) {
			if i+1 == len(args) {
				return nil, usageError("%s needs a value; see vultron %s -h", a, fs.Name())
			}
			i++
			flags = append(flags, args[i])
		}
	}
	if len(positional) == 0 {
		return flags, nil
	}
	return append(append(flags, "--"), positional...), nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stdin: os.Stdin}
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and turns its outcome into an exit status:
// 0 for success, 1 for a failure, 2 for a bad command line, or the status
// an exitStatusError carries.
func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 {
		printHelp(env.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			printHelp(env.stdout)
			return 0
		}
		cmd, ok := lookup(rest[0])
		if !ok {
			fmt.Fprintf(env.stderr, "vultron: %s; run \"vultron help\" for the list.\n", unknownCommand(rest[0]))
			return 2
		}
		// Every command prints its own usage for -h.
		_ = cmd.run(ctx, &environment{stdout: env.stdout, stderr: env.stdout, getenv: env.getenv}, []string{"-h"})
		return 0
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(env.stderr, "vultron: %s; run \"vultron help\" for the list.\n", unknownCommand(name))
		return 2
	}
	err := cmd.run(ctx, env, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.stderr, "vultron %s: %s.\n", name, sentence(strings.TrimPrefix(err.Error(), errUsage.Error()+": ")))
		return 2
	default:
		fmt.Fprintf(env.stderr, "vultron %s: %s.\n", name, sentence(err.Error()))
		var status *exitStatusError
		if errors.As(err, &status) {
			return status.status
		}
		return 1
	}
}

// unknownCommand says that name is no command and, when one command is
// nearer to it than any other (a typo, a plural), names that one.
func unknownCommand(name string) string {
	best, bestDist, ties := "", 3, 0
	for _, c := range commands() {
		switch d := editDistance(name, c.name); {
		case d < bestDist:
			best, bestDist, ties = c.name, d, 0
		case d == bestDist:
			ties++
		}
	}
	if best == "" || ties > 0 {
		return fmt.Sprintf("unknown command %q", name)
	}
	return fmt.Sprintf("unknown command %q (did you mean %q?)", name, best)
}

// editDistance is the number of insertions, deletions, substitutions and
// transpositions of adjacent letters that turn a into b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// sentence trims the trailing period so the caller can add exactly one.
func sentence(s string) string { return strings.TrimRight(s, ". \n") }

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "vultron: a federated node for multi-party coordinated vulnerability disclosure (the Vultron Protocol).\n\n")
	fmt.Fprintf(w, "usage: vultron <command> [flags] [arguments]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"vultron <command> -h\" for the flags of a command.\n")
}
