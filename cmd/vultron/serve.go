package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/internal/durationtext"
	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
)

func runServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("serve", "vultron serve [flags]",
		"Run a Vultron node: its actors' inboxes and outboxes, WebFinger and NodeInfo, and the\n"+
			"delivery workers. Settings also come from VULTRON_<FLAG> environment variables and\n"+
			"from the JSON file given by --config (keys are the flag names).", env)
	configPath := fs.String("config", "", "JSON file of settings (keys are the flag names)")
	dataDir := fs.String("data", "./data", "data directory: vultron.db, keys/, api-token, metrics-token, node-url (the URL it serves at, for the command line)")
	dataKeyFile := fs.String("data-key-file", "", "file of the node data key that encrypts case content at rest (default DATA/data-key, created 0600);\nVULTRON_DATA_KEY (base64) wins over it")
	metricsTokenFile := fs.String("metrics-token-file", "", "file of the metrics token, which reads GET /metrics and nothing else (default DATA/metrics-token,\ncreated 0600)")
	storeURL := fs.String("store", "", "store URL: bolt:PATH (default bolt:DATA/vultron.db), or postgres://USER@HOST/DATABASE of a\ndatabase that several serve processes share behind one --public-url (give each the same data key;\nput the password in a password file, ~/.pgpass or PGPASSFILE, read again at each connection,\nor in PGPASSWORD or VULTRON_STORE, not on the command line)")
	listen := fs.String("listen", "127.0.0.1:7001", "address to serve HTTP on")
	publicURL := fs.String("public-url", "", "base URL peers reach this node at (default http://<listen>)")
	var openFollowers listFlag
	fs.Var(&openFollowers, "open-followers", "NAME of a local actor that accepts every Follow at once (a public advisory actor), repeatable;\nevery other actor keeps Follows pending until an admin answers them (vultron followers accept)")
	var actors listFlag
	fs.Var(&actors, "actor", "local actor NAME:TYPE[:ROLES], repeatable (default vendor:Organization); ROLES are the CVD\nroles it takes in the cases it opens, such as vendor|deployer (default by TYPE: Organization vendor,\nPerson finder, others coordinator)")
	var defaultEmbargo daysFlag
	fs.Var(&defaultEmbargo, "default-embargo", "embargo offered on every case this node's actors open, in force from its creation,\nsuch as 90d or 36h (default none)")
	maxEmbargo := daysFlag(node.DefaultMaxEmbargo)
	fs.Var(&maxEmbargo, "max-embargo", "longest embargo this node's actors may propose and its Case Actors record, such as 365d;\nlonger proposals are refused with a sentence")
	logFormat := fs.String("log-format", "json", "log format: json or console")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	window := fs.Duration("date-window", actor.DefaultWindow, "how far a signed Date may be from this node's clock (at most 15m)")
	allowPrivate := fs.Bool("allow-private-peers", false, "allow peers on loopback and private addresses (tests and local set-ups only)")
	maxBody := fs.Int64("max-body", 256<<10, "largest inbox or outbox body in bytes")
	federation := fs.String("federation", string(policy.Open), "federation mode: open (any peer that signs correctly; for local testing) or allowlist\n(only the --allow-peer hosts; others get 403 before their key is fetched; for production)")
	var allowPeers listFlag
	fs.Var(&allowPeers, "allow-peer", "peer host (HOST or HOST:PORT) this node federates with in allowlist mode, repeatable")
	peerRate := fs.Float64("peer-rate", 0, "signed requests per second one peer host may make (0: no limit); over it: 429 + Retry-After")
	peerBurst := fs.Int("peer-burst", 0, "burst of --peer-rate (default: the rate rounded up)")
	ipRate := fs.Float64("ip-rate", 0, "federation requests per second one client IP (IPv6: one /64) may make (0: no limit)")
	ipBurst := fs.Int("ip-burst", 0, "burst of --ip-rate (default: the rate rounded up)")
	keyFetchRate := fs.Float64("key-fetch-rate", policy.DefaultKeyFetchRate, "key fetches per second the node makes to one host for keys it has not cached (0: no limit);\nrequests naming more new keys of a host get 429 + Retry-After")
	keyFetchBurst := fs.Int("key-fetch-burst", policy.DefaultKeyFetchBurst, "burst of --key-fetch-rate")
	var trustedProxies listFlag
	fs.Var(&trustedProxies, "trusted-proxy", "reverse proxy in front of the node (CIDR such as 10.0.0.0/8, or one address), repeatable: only\nfrom these peers is the --trusted-proxy-header read to find the client IP that rate limits,\naudit records and logs use; from any other peer it is ignored")
	var proxyHeaders listFlag
	fs.Var(&proxyHeaders, "trusted-proxy-header", "forwarding header the --trusted-proxy peers append the client's address to: X-Forwarded-For\n(the default) or Forwarded, repeatable when they set both; the other header is never read, since\na proxy passes it through as the client wrote it")
	workers := fs.Int("delivery-workers", 8, "deliveries sent at once")
	lease := fs.Duration("delivery-lease", store.DefaultLeaseTTL, "how long a delivery handed to a worker stays its own (one attempt takes at most half of it); on\nPostgreSQL a lease also ends, within seconds, when the process that holds it is gone")
	var webhooks listFlag
	fs.Var(&webhooks, "webhook", "URL that receives every case event as JSON signed with an HMAC (X-Vultron-Signature), repeatable")
	webhookSecret := fs.String("webhook-secret-file", "", "file holding the webhook signing secret (default DATA/webhook-secret, created 0600)")
	policyFile := fs.String("policy", "", "automation policy `FILE` (YAML or JSON, docs/policies.md): routine decisions made by rules;\nread again when it changes or on SIGHUP, and a changed file that does not parse is refused whole")
	deadlinesFile := fs.String("deadlines", "", "YAML or JSON `FILE` of deadline limits, business-day calendar and time zone (docs/deadlines.md;\ndefault: 5 and 10 business days to acknowledge and validate, the CRA's clocks, Monday to Friday in UTC)")
	var intelFeeds listFlag
	fs.Var(&intelFeeds, "intel-feed", "threat-intelligence feed, a file or an http(s) URL (the CISA KEV catalog's JSON or the simple format of\ndocs/intelligence.md), repeatable; URLs are fetched with the SSRF-safe client")
	intelInterval := fs.Duration("intel-interval", time.Hour, "how often each --intel-feed is fetched, at least a minute (failed fetches back off from a minute to six hours)")
	retryFirst := fs.Duration("retry-first", outbox.DefaultRetryPolicy().First, "wait after a delivery's first failure; each further failure doubles it")
	retryMax := fs.Duration("retry-max", outbox.DefaultRetryPolicy().Max, "longest wait between two delivery attempts")
	retryHorizon := fs.Duration("retry-horizon", outbox.DefaultRetryPolicy().Horizon, "how long a failing delivery is retried before it becomes a dead letter")
	secondFactor := fs.String("second-factor", "required", "whether analysts and admins need a second factor (authenticator app, passkey) to log in\nto the dashboard with a password: required or optional")
	oidcIssuer := fs.String("oidc-issuer", "", "issuer URL of an OpenID provider people log in to the dashboard through (single sign-on)")
	oidcClientID := fs.String("oidc-client-id", "", "this node's client id at the OpenID provider")
	oidcSecretFile := fs.String("oidc-client-secret-file", "", "file holding this node's client secret at the OpenID provider")
	oidcRoleClaim := fs.String("oidc-role-claim", "groups", "ID token claim whose values give a person's role")
	oidcRoleMap := fs.String("oidc-role-map", "", "the role of each value of the role claim, such as 'psirt-admins=admin,psirt=analyst'; a person\nwith no mapped value is refused (the highest mapped role wins; set again at every login)")
	oidcStanding := daysFlag(accounts.DefaultSSOTokenStanding)
	fs.Var(&oidcStanding, "oidc-token-standing", "how long the API tokens of a person who logs in through the OpenID provider keep working\nafter their last login there, such as 30d (the node hears that the provider shut a person out only at a\nlogin, so this bounds the tokens of one who left); from an hour to "+strconv.Itoa(int(accounts.MaxTokenTTL.Hours()/24))+"d")
	attributeNames := fs.Bool("attribute-names", false, "send, with each activity a person has one of the node's actors send, that person's display name\n(as the activity's attributedTo, an AS2 Person with a name and no id); off: peers see the actor only")
	checkFirst := fs.Duration("replica-check-first", cases.DefaultIdleMin, "first wait between two checks of a replica in sync against its Case Actor's ledger\n(also how soon a participant that closed, and is sent only what concerns it, fetches the rest); each check that finds nothing new doubles it")
	checkMax := fs.Duration("replica-check-max", cases.DefaultIdleMax, "longest wait between two checks of a replica in sync")
	checkRetryFirst := fs.Duration("replica-retry-first", cases.DefaultRetryMin, "wait after a failed check of a replica; each further failure doubles it")
	checkRetryMax := fs.Duration("replica-retry-max", cases.DefaultRetryMax, "longest wait between two failed checks of a replica")
	gcPercent := fs.Int("gc-percent", node.DefaultGCPercent, "heap growth, in percent of the live heap, that starts a garbage collection (Go's GOGC;\nthe GOGC environment variable wins); a soft memory limit of 90% of the container's memory limit, or half the\nmachine's memory, bounds the heap whatever this says (the GOMEMLIMIT environment variable wins)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("serve takes no arguments, got %q", fs.Arg(0))
	}
	if err := applySettings(fs, env.getenv, *configPath); err != nil {
		return err
	}
	if maxEmbargo <= 0 {
		return usageError("--max-embargo must be positive, such as 365d")
	}
	if defaultEmbargo > maxEmbargo {
		return usageError("the default embargo (%s) is longer than --max-embargo (%s)", defaultEmbargo.String(), maxEmbargo.String())
	}
	if *storeURL != "" {
		if err := checkStoreURL("--store", *storeURL); err != nil {
			return err
		}
	}
	if *gcPercent <= 0 {
		return usageError("--gc-percent must be positive, such as %d", node.DefaultGCPercent)
	}
	if *keyFetchRate < 0 {
		return usageError("--key-fetch-rate is %v; it must not be negative (0 is no limit)", *keyFetchRate)
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
		ac, err := node.ParseActorSpec(spec)
		if err != nil {
			return usageError("%v", err)
		}
		acs = append(acs, ac)
	}
	for _, name := range openFollowers {
		found := false
		for i := range acs {
			if acs[i].Name == name {
				acs[i].OpenFollowers, found = true, true
			}
		}
		if !found {
			return usageError("--open-followers %s names no actor of --actor", name)
		}
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
	mode, err := policy.ParseMode(*federation)
	if err != nil {
		return usageError("%v", err)
	}
	if mode == policy.Allowlist && len(allowPeers) == 0 {
		return usageError("--federation allowlist needs at least one --allow-peer HOST")
	}
	if *lease < 2*time.Second {
		return usageError("--delivery-lease %s is too short: an attempt gets half of it; give at least 2s", *lease)
	}
	if *peerRate < 0 || *ipRate < 0 || *peerBurst < 0 || *ipBurst < 0 {
		return usageError("rate limits and bursts must not be negative")
	}
	if _, err := policy.ParseTrustedProxies(trustedProxies); err != nil {
		return usageError("--trusted-proxy: %v", err)
	}
	if _, _, err := policy.ParseProxyHeaders(proxyHeaders); err != nil {
		return usageError("--trusted-proxy-header: %v", err)
	}
	if *secondFactor != "required" && *secondFactor != "optional" {
		return usageError("--second-factor is required or optional, not %q", *secondFactor)
	}
	if d := time.Duration(oidcStanding); d < time.Hour || d > accounts.MaxTokenTTL {
		return usageError("--oidc-token-standing is from an hour to %dd, not %s", int(accounts.MaxTokenTTL.Hours()/24), oidcStanding.String())
	}
	oidcCfg, err := oidcConfig(*oidcIssuer, *oidcClientID, *oidcSecretFile, *oidcRoleClaim, *oidcRoleMap)
	if err != nil {
		return err
	}
	retry := outbox.DefaultRetryPolicy()
	retry.First, retry.Max, retry.Horizon = *retryFirst, *retryMax, *retryHorizon
	if retry.First <= 0 || retry.Max < retry.First || retry.Horizon <= 0 {
		return usageError("retry settings: want 0 < --retry-first <= --retry-max and a positive --retry-horizon")
	}
	replicaSync := cases.SyncTiming{IdleMin: *checkFirst, IdleMax: *checkMax, RetryMin: *checkRetryFirst, RetryMax: *checkRetryMax}
	if replicaSync.IdleMin <= 0 || replicaSync.IdleMax < replicaSync.IdleMin || replicaSync.RetryMin <= 0 || replicaSync.RetryMax < replicaSync.RetryMin {
		return usageError("replica check settings: want 0 < --replica-check-first <= --replica-check-max and 0 < --replica-retry-first <= --replica-retry-max")
	}
	if *intelInterval < time.Minute {
		return usageError("--intel-interval must be at least a minute, not %s", *intelInterval)
	}
	for _, f := range intelFeeds {
		if !strings.HasPrefix(f, "https://") && !strings.HasPrefix(f, "http://") {
			if _, err := os.Stat(f); err != nil && strings.Contains(f, "://") {
				return usageError("--intel-feed %q is neither an http(s) URL nor a file", f)
			} else if err != nil {
				return fmt.Errorf("--intel-feed %s: %w", f, err)
			}
		}
	}
	var pol *rules.Policy
	reload := make(chan struct{}, 1)
	if *policyFile != "" {
		var err error
		if pol, err = node.ReadPolicy(*policyFile); err != nil {
			return err
		}
	}
	// SIGHUP reads the policy again; a node without one says so and runs
	// on (the signal's default would end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if *policyFile == "" {
					log.Warn().Msg("SIGHUP: this node has no --policy to read again; it runs on as it is")
					continue
				}
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	var deadlines *deadline.Config
	if *deadlinesFile != "" {
		cfg, err := readDeadlines(*deadlinesFile)
		if err != nil {
			return err
		}
		deadlines = &cfg
	}
	cfg := node.Config{
		Deadlines:            deadlines,
		Policy:               pol,
		PolicyFile:           *policyFile,
		PolicyReload:         reload,
		IntelFeeds:           intelFeeds,
		IntelInterval:        *intelInterval,
		DataDir:              *dataDir,
		DataKeyFile:          *dataKeyFile,
		DataKey:              env.getenv("VULTRON_DATA_KEY"),
		Store:                *storeURL,
		MetricsTokenFile:     *metricsTokenFile,
		Listen:               *listen,
		PublicURL:            *publicURL,
		Actors:               acs,
		DateWindow:           *window,
		DefaultEmbargo:       time.Duration(defaultEmbargo),
		MaxEmbargo:           time.Duration(maxEmbargo),
		AllowPrivatePeers:    *allowPrivate,
		MaxInboxBytes:        *maxBody,
		Federation:           mode,
		AllowPeers:           allowPeers,
		PeerRate:             *peerRate,
		PeerBurst:            *peerBurst,
		IPRate:               *ipRate,
		IPBurst:              *ipBurst,
		KeyFetchRate:         keyFetchRateOf(*keyFetchRate),
		KeyFetchBurst:        *keyFetchBurst,
		TrustedProxies:       trustedProxies,
		TrustedProxyHeaders:  proxyHeaders,
		DeliveryWorkers:      *workers,
		DeliveryLease:        *lease,
		Webhooks:             webhooks,
		WebhookSecretFile:    *webhookSecret,
		Retry:                retry,
		ReplicaSync:          replicaSync,
		SecondFactorOptional: *secondFactor == "optional",
		OIDC:                 oidcCfg,
		SSOTokenStanding:     time.Duration(oidcStanding),
		AttributeNames:       *attributeNames,
		Version:              version,
		Logger:               log,
		Notice:               env.stdout,
	}
	// A bad value (a webhook or peer that is no URL or host, a metrics
	// token file that is the API token file) is refused before node.New
	// creates the data directory, its keys and tokens.
	if err := cfg.Check(); err != nil {
		return usageError("%v", err)
	}
	mem, err := tuneMemory(*gcPercent)
	if err != nil {
		return err
	}
	log.Info().Int("gc_percent", mem.GCPercent).Str("gc_percent_from", mem.From).Str("memory_limit_bytes", limitText(mem.Limit)).Msg("garbage collector set")
	// The address is taken before node.New creates the data directory, its
	// keys and tokens: a node that cannot serve prints no token or
	// enrollment link as shown once.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return listenError(*listen, err)
	}
	cfg.Listener = ln
	n, err := node.New(ctx, cfg)
	if err != nil {
		ln.Close()
		return damagedStoreError(err, *dataDir)
	}
	u, err := writeNodeURL(*dataDir, ln.Addr())
	if err != nil {
		// The node serves without it: only a command given --data and no
		// --node misses it, and says where it looked.
		log.Warn().Err(err).Msg("the node's URL was not written to its data directory")
	}
	serveErr := n.Serve(ctx)
	if u != "" {
		// A command given --data then says that no node serves there,
		// rather than send the directory's token to whatever listens on
		// the port next.
		if err := removeNodeURL(*dataDir, u); err != nil {
			log.Warn().Err(err).Msg("the node's URL was not removed from its data directory")
		}
	}
	return serveErr
}

// removeNodeURL removes dataDir/node-url if it still holds u, the URL
// this process wrote there: another process started on the directory
// since may have written its own.
func removeNodeURL(dataDir, u string) error {
	path := filepath.Join(dataDir, nodeURLFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, iofs.ErrNotExist) || (err == nil && strings.TrimSpace(string(data)) != u) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the node's URL: %w", err)
	}
	return nil
}

// writeNodeURL writes to dataDir/node-url, and returns, the URL a client on this host
// reaches the node's API at: http:// and the address it listens on, with
// an address that stands for every interface (0.0.0.0, ::) given as
// loopback, which it includes.
func writeNodeURL(dataDir string, addr net.Addr) (string, error) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("the listener's address %s is not a TCP address", addr)
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	u := "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
	// Replaced whole: ready --data may read it while a start writes it.
	if err := replaceFile(filepath.Join(dataDir, nodeURLFile), []byte(u+"\n")); err != nil {
		return "", fmt.Errorf("write the node's URL: %w", err)
	}
	return u, nil
}

// damagedStoreError says, for a store found damaged at start (a file cut
// short, a flipped byte: store.DamagedError), that the node cannot start
// on it and how to restore it, in one sentence instead of the chain of
// errors; any other err is returned as it is.
func damagedStoreError(err error, dataDir string) error {
	var de *store.DamagedError
	if !errors.As(err, &de) {
		return err
	}
	what := "the store"
	if de.Path != "" {
		what = "the store " + de.Path
	}
	return fmt.Errorf("%s is damaged, so the node does not start: %s; restore the store from a backup (docs/operations.md, \"Backups\") after checking the backup with vultron store copy --from bolt:BACKUP --to bolt:/tmp/check.db --data %s",
		what, de.Reason, dataDir)
}

// listenError says why serve cannot listen on addr.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("cannot listen on %s: the address is in use by another process; stop it or choose another address with --listen", addr)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return fmt.Errorf("cannot listen on %s: %v", addr, err)
}

// newLogger returns the node's logger: JSON lines by default, a readable
// console format for people, in colour only on a terminal so that a file
// or a pipe gets no escape sequences.
func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Logger{}, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	default:
		return zerolog.Logger{}, fmt.Errorf("log format %q is not json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("svc", "vultron").Logger(), nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// daysFlag is a duration flag that also takes whole days ("90d").
type daysFlag time.Duration

// String writes whole days as "90d" and other durations as
// time.Duration does without its zero units ("36h", "10m", not "36h0m0s"),
// so that a message quotes a value as it would be typed.
func (d *daysFlag) String() string {
	dur := time.Duration(*d)
	switch {
	case dur == 0:
		return ""
	case dur%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(dur/(24*time.Hour)), 10) + "d"
	}
	return durationtext.Typed(dur)
}

func (d *daysFlag) Set(v string) error {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return fmt.Errorf("%q is not a number of days", v)
		}
		*d = daysFlag(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur < 0 {
		return fmt.Errorf("%q is not a duration such as 90d or 36h", v)
	}
	*d = daysFlag(dur)
	return nil
}

// oidcConfig reads the single sign-on flags: none of them, or an issuer,
// a client id, a client secret file and a role map together.
func oidcConfig(issuer, clientID, secretFile, claim, roleMap string) (*accounts.OIDCConfig, error) {
	if issuer == "" && clientID == "" && secretFile == "" && roleMap == "" {
		return nil, nil
	}
	if issuer == "" || clientID == "" || secretFile == "" || roleMap == "" {
		return nil, usageError("single sign-on needs --oidc-issuer, --oidc-client-id, --oidc-client-secret-file and --oidc-role-map together")
	}
	roles, err := accounts.ParseRoleMap(roleMap)
	if err != nil {
		return nil, usageError("--oidc-role-map: %v", err)
	}
	info, err := os.Stat(secretFile)
	if err != nil {
		var pe *iofs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "no such file or directory", without "stat FILE"
		}
		return nil, fmt.Errorf("the OpenID client secret file %s cannot be read (%w); give the file that holds the node's client secret at the provider with --oidc-client-secret-file", secretFile, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the OpenID client secret file %s can be read by other users (mode %v); run chmod 600 %s", secretFile, info.Mode().Perm(), secretFile)
	}
	raw, err := os.ReadFile(secretFile)
	if err != nil {
		return nil, fmt.Errorf("read the OpenID client secret: %w", err)
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return nil, fmt.Errorf("the OpenID client secret file %s is empty", secretFile)
	}
	return &accounts.OIDCConfig{Issuer: issuer, ClientID: clientID, ClientSecret: secret, RoleClaim: claim, RoleMap: roles}, nil
}

// readDeadlines reads a deadline configuration, refusing one too large
// before reading it all.
func readDeadlines(path string) (deadline.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return deadline.Config{}, fmt.Errorf("read deadlines: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, deadline.MaxSize+1))
	if err != nil {
		return deadline.Config{}, fmt.Errorf("read deadlines %s: %w", path, err)
	}
	return deadline.Parse(data, path)
}

// keyFetchRateOf is node.Config.KeyFetchRate for --key-fetch-rate, whose
// 0 is no limit (as --peer-rate's is), where the node's zero is the
// default limit.
func keyFetchRateOf(flag float64) float64 {
	if flag == 0 {
		return -1
	}
	return flag
}
