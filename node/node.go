package node

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/inbox"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/internal/samefile"
	"github.com/openvultron/vultron/node/calendar"
	"github.com/openvultron/vultron/node/dashboard"
	"github.com/openvultron/vultron/node/federation"
	"github.com/openvultron/vultron/node/jsonapi"
	"github.com/openvultron/vultron/node/publication"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/webhook"
	"golang.org/x/time/rate"
)

// ActorConfig names one local actor, its ActivityStreams type and the CVD
// roles it takes in the cases it opens (zero: DefaultRoles of its type).
type ActorConfig struct {
	Name  string
	Type  actor.Type
	Roles cvdstate.RoleSet
	// OpenFollowers makes the actor accept every Follow at once, as a
	// node's public advisory actor does; an actor without it keeps each
	// Follow pending until an admin accepts or rejects it.
	OpenFollowers bool
}

// DefaultRoles returns the CVD roles an actor of type t takes in the cases
// it opens when its configuration names none: an Organization is a vendor,
// a Person a finder, and a Service, Application or Group a coordinator.
func DefaultRoles(t actor.Type) cvdstate.RoleSet {
	switch t {
	case actor.Organization:
		return cvdstate.Vendor
	case actor.Person:
		return cvdstate.Finder
	}
	return cvdstate.Coordinator
}

// ParseActorSpec parses "NAME:TYPE[:ROLES]", such as vendor:Organization or
// psirt:Organization:vendor|deployer (roles separated by | or +).
func ParseActorSpec(spec string) (ActorConfig, error) {
	base, roles := spec, ""
	if i := strings.LastIndex(spec, ":"); i > 0 && strings.Count(spec, ":") == 2 {
		base, roles = spec[:i], spec[i+1:]
	}
	name, typ, err := actor.ParseActorSpec(base)
	if err != nil {
		return ActorConfig{}, err
	}
	ac := ActorConfig{Name: name, Type: typ}
	if roles != "" {
		ac.Roles, err = cvdstate.ParseRoleSet(strings.ReplaceAll(roles, "+", "|"))
		if err != nil {
			return ActorConfig{}, fmt.Errorf("actor %q: %w", spec, err)
		}
		if ac.Roles&(cvdstate.CaseOwner|cvdstate.CaseManager) != 0 {
			return ActorConfig{}, fmt.Errorf("actor %q: case_owner and case_manager are taken in a case, not configured", spec)
		}
	}
	return ac, nil
}

// Config configures a node. Zero fields take the defaults documented on
// each; DataDir, PublicURL and at least one actor are required.
type Config struct {
	// DataDir holds vultron.db, the actors' private keys (keys/NAME.pem),
	// the API token (api-token) and the metrics token (metrics-token). It
	// is created with mode 0700.
	DataDir string
	// MetricsTokenFile holds the metrics token, which authorizes GET
	// /metrics and nothing else; default DataDir/metrics-token, created
	// (0600) on first start. It must differ from the API token.
	MetricsTokenFile string
	// DataKeyFile is the file holding the 32-byte node data key that seals
	// case content in vultron.db; default DataDir/data-key, created with
	// mode 0600 on first start. A key file readable by group or others is
	// refused.
	DataKeyFile string
	// DataKey, when set, is the data key in base64 (VULTRON_DATA_KEY); it
	// wins over DataKeyFile.
	DataKey string
	// Store is the URL of the store (store.OpenURL): "bolt:PATH", or a
	// postgres:// URL of a database that several node processes may share
	// behind one PublicURL. Empty means bolt:DataDir/vultron.db.
	Store string
	// Listen is the TCP address to serve on; default 127.0.0.1:7001.
	// Ignored when Listener is set.
	Listen string
	// Listener, when set, is used instead of listening on Listen (tests
	// pass a listener on port 0 and derive PublicURL from it).
	Listener net.Listener
	// PublicURL is the base URL peers reach this node at, such as
	// https://cvd.example.org; actor ids are PublicURL/actors/NAME.
	PublicURL string
	Actors    []ActorConfig
	// DateWindow is how far a signed Date may be from the node's clock;
	// default 5 minutes.
	DateWindow time.Duration
	// AllowPrivatePeers lets the node fetch from and deliver to loopback
	// and private addresses; for tests and local set-ups only.
	AllowPrivatePeers bool
	// RootCAs, when set, are the certificate authorities the node
	// verifies the TLS certificates of the servers it fetches from and
	// delivers to against, instead of the system's: a test network's own
	// CA. Nil in production.
	RootCAs *x509.CertPool
	// Federation is the federation mode: policy.Open (the default; any
	// peer that signs correctly) or policy.Allowlist (only the hosts in
	// AllowPeers and this node itself; other peers get 403 before their
	// key is fetched, and nothing is fetched from or delivered to them).
	Federation policy.Mode
	// AllowPeers are the peer hosts ("host" or "host:port") of allowlist
	// federation.
	AllowPeers []string
	// PeerRate limits the signed requests per second of one peer host (the
	// host of the signature's key id, checked before the key is fetched);
	// PeerBurst is its bucket size. IPRate and IPBurst limit the
	// federation requests (inbox POSTs and signed GETs) of one client IP.
	// Zero rates mean no limit. Over a limit the node answers 429 with
	// Retry-After.
	PeerRate  float64
	PeerBurst int
	IPRate    float64
	IPBurst   int
	// KeyFetchRate limits the key fetches per second the node makes to
	// one host, for signatures whose key it has not cached (a request
	// naming ever new key ids on someone else's host would make the node
	// flood that host); KeyFetchBurst is its bucket size. Zero means
	// policy.DefaultKeyFetchRate and policy.DefaultKeyFetchBurst, a
	// negative rate no limit. Over it the request is answered 429 with
	// Retry-After.
	KeyFetchRate  float64
	KeyFetchBurst int
	// TrustedProxies are the reverse proxies (CIDR, or one address) in
	// front of the node. Only from a request whose immediate peer is in
	// one of them is the forwarding header they append to
	// (TrustedProxyHeaders) read, to find the client IP that rate limits,
	// audit records and logs use (see policy.Policy.ClientIP); from any
	// other peer it is ignored.
	TrustedProxies []string
	// TrustedProxyHeaders names the forwarding headers the trusted proxies
	// append to: "X-Forwarded-For" (the default) or "Forwarded", or both;
	// the other is never read (policy.Config.ProxyHeaders).
	TrustedProxyHeaders []string
	// MaxInboxBytes is the largest activity a local actor may send (an
	// outbox POST body); default 256 KiB. The inbox takes that much and
	// cases.AnnouncementMargin more, so that a Case Actor's announcement
	// of any activity it recorded fits.
	MaxInboxBytes int64
	// ReplicaSync schedules the checks of this node's replicas against
	// their Case Actors' ledgers; zero fields take cases' defaults.
	ReplicaSync cases.SyncTiming
	// DefaultEmbargo is the embargo the node's actors offer on every case
	// they open, in force from its creation; zero means no embargo.
	DefaultEmbargo time.Duration
	// MaxEmbargo is the longest embargo this node's actors may propose and
	// its Case Actors record; default DefaultMaxEmbargo (365 days).
	MaxEmbargo time.Duration
	// DeliveryWorkers is how many deliveries are sent at once; default 8.
	DeliveryWorkers int
	// DeliveryLease is how long a delivery handed to a worker stays that
	// worker's; one attempt may take at most half of it. On a shared store
	// it is how soon another process sends what a killed one was sending.
	// Default store.DefaultLeaseTTL.
	DeliveryLease time.Duration
	// Webhooks are URLs that receive every case event as a signed JSON
	// document (package webhook). The operator configures them, so they
	// may be on private addresses.
	Webhooks []string
	// WebhookSecretFile holds the secret that signs webhook requests;
	// default DataDir/webhook-secret, created (0600) when webhooks are
	// configured and the file is missing.
	WebhookSecretFile string
	// Retry is the delivery retry policy; the zero value means
	// outbox.DefaultRetryPolicy (seven days).
	Retry outbox.RetryPolicy
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// in-flight requests and deliveries; default 10 s.
	ShutdownTimeout time.Duration
	// BackupStallTimeout is how long a backup's client may take to read
	// 32 KiB before the node cuts the backup short and frees its backup slot;
	// default jsonapi.DefaultBackupStallTimeout.
	BackupStallTimeout time.Duration
	// AuditPerRemote and AuditPerWindow bound the refusals recorded one by
	// one in the audit log per client IP and in all, per minute; zero
	// means DefaultAuditPerRemote and DefaultAuditPerWindow. Refusals over
	// the bound are counted and summarised (see audit.go).
	AuditPerRemote int
	AuditPerWindow int
	// SecondFactorOptional lets analysts and admins log in to the
	// dashboard with a password alone (serve --second-factor optional);
	// by default they need a second factor (accounts.Config).
	SecondFactorOptional bool
	// OIDC, when set, lets people log in to the dashboard through an
	// OpenID provider (serve --oidc-issuer ...).
	OIDC *accounts.OIDCConfig
	// SSOTokenStanding is accounts.Config.SSOTokenStanding: how long the
	// API tokens of a user of single sign-on work after that user's last
	// login through the provider; default 30 days.
	SSOTokenStanding time.Duration
	// AttributeNames sends, with each activity a person has the node's
	// actor send, that person's display name (serve --attribute-names;
	// see outbox.By.DisplayName for where on the wire).
	AttributeNames bool
	// Argon2 is the cost of password hashes; zero means
	// accounts.DefaultArgon2. Tests lower it.
	Argon2 accounts.Argon2Params
	// NoSync skips fsync in the store; for tests only.
	NoSync bool
	// Version is reported in NodeInfo.
	Version string
	Logger  zerolog.Logger
	// Notice receives the one-time message with a newly created API
	// token; default os.Stdout.
	Notice io.Writer
	// Now is the node's clock; default time.Now.
	Now func() time.Time
	// Deadlines is how long each kind of deadline clock may run and on
	// what calendar; nil means deadline.Default().
	Deadlines *deadline.Config
	// DeadlineCheck is how often the node looks for deadlines that came
	// near or passed; default a minute.
	DeadlineCheck time.Duration
	// IntelFeeds are threat-intelligence feeds (files or http(s) URLs) the
	// node polls for signals about its cases (package intel); URLs are
	// fetched with the SSRF-safe client. IntelInterval is how often each
	// is fetched (default an hour) and IntelBackoff the first wait after a
	// failed fetch, doubling up to six hours (default a minute).
	IntelFeeds    []string
	IntelInterval time.Duration
	IntelBackoff  time.Duration
	// Policy is the automation policy the node follows from the start
	// (package rules, automation); nil means none. PolicyFile, when set,
	// is the file it came from: the node reads it again when it changes
	// (checked every PolicyCheck, default two seconds) or when
	// PolicyReload fires (serve sends a SIGHUP there), and refuses a
	// changed file that does not parse, keeping the policy in force.
	Policy       *rules.Policy
	PolicyFile   string
	PolicyCheck  time.Duration
	PolicyReload <-chan struct{}
	// AutomationInterval is how often the automation looks for decisions
	// when nothing woke it; default two seconds.
	AutomationInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7001"
	}
	if c.DateWindow == 0 {
		c.DateWindow = actor.DefaultWindow
	}
	if c.MaxInboxBytes == 0 {
		c.MaxInboxBytes = 256 << 10
	}
	if c.DeliveryWorkers == 0 {
		c.DeliveryWorkers = 8
	}
	if c.MaxEmbargo == 0 {
		c.MaxEmbargo = DefaultMaxEmbargo
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Notice == nil {
		c.Notice = os.Stdout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PolicyCheck == 0 {
		c.PolicyCheck = 2 * time.Second
	}
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("no data directory given")
	}
	if c.PublicURL == "" {
		return errors.New("no public URL given (the base URL peers reach this node at)")
	}
	if len(c.Actors) == 0 {
		return errors.New("no actor given: a node hosts at least one, for example vendor:Organization")
	}
	seen := map[string]bool{}
	for _, a := range c.Actors {
		if seen[a.Name] {
			return fmt.Errorf("actor %s is given twice", a.Name)
		}
		seen[a.Name] = true
	}
	if c.DateWindow < 0 || c.DateWindow > 15*time.Minute {
		return fmt.Errorf("date window %v is outside 0 to 15 minutes", c.DateWindow)
	}
	if c.MaxEmbargo < 0 || c.DefaultEmbargo < 0 {
		return errors.New("embargo durations must not be negative")
	}
	// Zero means the default for these settings of serve's flags; below
	// zero means nothing.
	for _, s := range []struct {
		flag  string
		value float64
		shown any
	}{
		{"--delivery-workers", float64(c.DeliveryWorkers), c.DeliveryWorkers},
		{"--max-body", float64(c.MaxInboxBytes), c.MaxInboxBytes},
		{"--peer-rate", c.PeerRate, c.PeerRate},
		{"--peer-burst", float64(c.PeerBurst), c.PeerBurst},
		{"--ip-rate", c.IPRate, c.IPRate},
		{"--ip-burst", float64(c.IPBurst), c.IPBurst},
		{"--key-fetch-burst", float64(c.KeyFetchBurst), c.KeyFetchBurst},
		{"--delivery-lease", float64(c.DeliveryLease), c.DeliveryLease},
		{"--intel-interval", float64(c.IntelInterval), c.IntelInterval},
	} {
		if s.value < 0 {
			return fmt.Errorf("%s is %v; it must not be negative", s.flag, s.shown)
		}
	}
	if c.DefaultEmbargo > c.MaxEmbargo {
		return fmt.Errorf("the default embargo (%v) is longer than the longest this node accepts (%v, --max-embargo)", c.DefaultEmbargo, c.MaxEmbargo)
	}
	if _, err := actor.ParsePublicURL(c.PublicURL); err != nil {
		return err
	}
	if c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("listen address %q: %w", c.Listen, err)
		}
	}
	for _, u := range c.Webhooks {
		if err := webhook.CheckURL(u); err != nil {
			return err
		}
	}
	for _, h := range c.AllowPeers {
		if err := policy.CheckHost(h); err != nil {
			return err
		}
	}
	if c.OIDC != nil {
		if err := accounts.CheckIssuer(c.OIDC.Issuer); err != nil {
			return err
		}
	}
	apiToken := filepath.Join(c.DataDir, tokenFile)
	if c.MetricsTokenFile != "" && samefile.Is(c.MetricsTokenFile, apiToken) {
		return metricsInAPITokenFile(c.MetricsTokenFile, c.DataDir)
	}
	if c.WebhookSecretFile != "" && samefile.Is(c.WebhookSecretFile, apiToken) {
		return fmt.Errorf("the webhook secret file %s is the API token file; point --webhook-secret-file at another file (or leave it out for %s): the receivers of the webhooks hold their secret, and must not hold the admin's token",
			c.WebhookSecretFile, filepath.Join(c.DataDir, webhookSecretFile))
	}
	return nil
}

// Check reports what New would refuse of c before it creates anything:
// a setting that is missing or malformed, or a secret's file that is the
// API token file. New refuses the same, before it creates the data
// directory.
func (c Config) Check() error {
	c.setDefaults()
	return c.validate()
}

// DefaultMaxEmbargo is the longest embargo a node accepts unless told
// otherwise: a year.
const DefaultMaxEmbargo = 365 * 24 * time.Hour

// DefaultGCPercent is the heap growth, in percent of the live heap, that
// starts a garbage collection in a serving node (vultron serve
// --gc-percent; the Go runtime's GOGC). Go's default of 100 made the
// collector take about an eighth of the node's CPU under inbox load, much
// of it in assists on the store's one committer; at 400 a node accepted
// about 18% more Offers a second at 64 senders (BENCHMARKS.md §1). The
// benchmarks of the node's parts run with it too.
const DefaultGCPercent = 400

// Node is one running Vultron node.
type Node struct {
	cfg      Config
	log      zerolog.Logger
	db       *store.DB
	localsMu sync.RWMutex
	locals   map[string]actor.Local // configured actors and loaded Case Actors
	order    []string               // configured actor names in order
	keyDir   string
	host     string // host[:port] of the public URL
	scheme   string
	token    tokenChecker
	accounts *accounts.Service
	// guards are the routes' guards by "METHOD path template", as the
	// router registered them (authz.go).
	guards   map[string]guard
	verifier *actor.Verifier
	keys     *actor.KeyFetcher // remote keys, refreshed when a peer announces a rotation
	fetcher  *actor.Fetcher
	policy   *policy.Policy
	audit    *refusalAuditor
	handler  http.Handler
	services []service

	inbox     *inbox.Pipeline
	engine    *cases.Engine
	submitter *outbox.Submitter
	deliverer *outbox.Deliverer
	metrics   *metrics
	dashboard *dashboard.Dashboard
	calendar  *calendar.Feeds
	// publication serves the published advisories and publishes them.
	publication *publication.Endpoints
	federation  *federation.Endpoints
	jsonapi     *jsonapi.Endpoints
	// backupDir is where GET /api/backup writes its copy: the bbolt
	// store file's directory; empty on PostgreSQL.
	backupDir string
	// requests counts the HTTP handlers running (Serve), for the shutdown
	// to wait for those it cut short, and for the in-flight gauge.
	requests inFlight
	webhooks *webhook.Dispatcher

	// deadlines is the node's deadline configuration; deadlineHooks are
	// called with each deadline the watcher announced (deadlines.go).
	deadlines     deadline.Config
	deadlineHooks []func(context.Context, deadline.Notice)
	// intelHooks are called with each intelligence signal the node
	// offered for a case (intel.go).
	intelHooks []func(context.Context, intel.Match)
	// automation carries the policy out (automation.go).
	automation *automation.Engine

	closeOnce sync.Once
	closeErr  error

	// stopping is closed when Serve begins to shut down, to end the
	// dashboard's event streams (which never finish on their own).
	stopping chan struct{}
	// serving is set once Serve has started the node's services and
	// serves requests (readiness, ops.go).
	serving atomic.Bool

	// metricsToken reads GET /metrics and nothing else, so that a
	// scraper does not hold the API token.
	metricsToken tokenChecker

	// rotateMu serialises actor key rotations.
	rotateMu sync.Mutex
	// rotationStep, when set, is called between the steps of a key
	// rotation with the name of the step just done; an error it returns
	// stops the rotation there as a crash would. Nil outside tests.
	rotationStep atomic.Pointer[func(step string) error]
}

// stepDone reports a finished step of a key rotation to the rotationStep
// hook.
func (n *Node) stepDone(step string) error {
	if f := n.rotationStep.Load(); f != nil {
		return (*f)(step)
	}
	return nil
}

// service is a background part of the node that runs until its context
// ends (the delivery workers, the dedup pruner ...).
type service struct {
	name string
	run  func(ctx context.Context) error
	// leader marks a timer or sweep: of the processes that share a store,
	// only the one that leads runs it (see runLed).
	leader bool
}

// New opens the node's store and prepares its actors, keys and handlers.
// On first start it creates the data directory, one RSA-2048 key per actor
// and the API token, which it prints once to cfg.Notice.
func New(ctx context.Context, cfg Config) (_ *Node, retErr error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	base, err := actor.ParsePublicURL(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("node: public URL: %w", err)
	}
	cfg.PublicURL = base
	pu, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("node: public URL: %w", err)
	}
	n := &Node{
		stopping: make(chan struct{}),
		cfg:      cfg,
		log:      cfg.Logger,
		locals:   map[string]actor.Local{},
		host:     pu.Host,
		scheme:   pu.Scheme,
	}
	if err := checkMetricsTokenFile(cfg); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.DataKey != "" {
		if _, err := store.ParseDataKey(cfg.DataKey); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	keyDir := filepath.Join(cfg.DataDir, "keys")
	n.keyDir = keyDir
	// A start that is refused leaves no directory it made and left empty:
	// the next start finds the place as the operator left it.
	var made []string
	defer func() {
		if retErr != nil {
			for i := len(made) - 1; i >= 0; i-- {
				_ = os.Remove(made[i]) // only while empty
			}
		}
	}()
	for _, d := range []struct{ path, what string }{{cfg.DataDir, "data directory"}, {keyDir, "key directory"}} {
		if _, err := os.Stat(d.path); errors.Is(err, fs.ErrNotExist) {
			made = append(made, d.path)
		}
		if err := os.MkdirAll(d.path, 0o700); err != nil {
			return nil, fmt.Errorf("node: %s: %w", d.what, err)
		}
	}

	storeURL := cfg.Store
	if storeURL == "" {
		storeURL = "bolt:" + filepath.Join(cfg.DataDir, "vultron.db")
	}
	if path, ok := strings.CutPrefix(storeURL, "bolt:"); ok {
		// bbolt makes a new store in an empty file: the node would
		// start as a new one beside the old one's keys and tokens.
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			return nil, fmt.Errorf("node: the store file %s is empty, not a store: restore the store from a backup (docs/operations.md), or remove the empty file to start a new store", path)
		}
	}
	dataKeys, err := store.LoadDataKeys(cfg.DataDir, cfg.DataKeyFile, cfg.DataKey, true)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	db, err := store.OpenURL(ctx, storeURL, store.Options{
		NoSync:          cfg.NoSync,
		LeaseTTL:        cfg.DeliveryLease,
		Logger:          cfg.Logger,
		Now:             cfg.Now,
		DataKey:         dataKeys.Current,
		PreviousDataKey: dataKeys.Previous,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", withMissingKey(withRetiredKey(err, cfg), dataKeys))
	}
	n.db = db
	if path, ok := strings.CutPrefix(storeURL, "bolt:"); ok {
		// Backups are written beside the store file; one a node that
		// stopped while sending it left behind goes now (the store's file
		// lock says no other node uses the directory's store).
		n.backupDir = filepath.Dir(path)
		// The directory's name is not a pattern: only the file names are
		// matched.
		entries, _ := os.ReadDir(n.backupDir)
		for _, ent := range entries {
			if ok, _ := filepath.Match(jsonapi.BackupTempPattern, ent.Name()); !ok || !ent.Type().IsRegular() {
				continue
			}
			f := filepath.Join(n.backupDir, ent.Name())
			if err := os.Remove(f); err != nil {
				cfg.Logger.Warn().Err(err).Str("file", f).Msg("cannot remove the file of a backup cut short")
			}
		}
	}
	n.audit = newRefusalAuditor(db, cfg.Logger, cfg.Now, cfg.AuditPerRemote, cfg.AuditPerWindow)
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	// Processes that share a database are one node: they start one at a
	// time, each taking the keys and tokens the others made, and giving
	// the others what it makes (see shareFiles).
	release := func() {}
	var seenFiles store.FilesSeen
	if db.Shared() {
		if release, err = db.StartupLock(ctx); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		if seenFiles, err = db.PullFilesSeen(ctx, cfg.DataDir); err != nil {
			release()
			return nil, fmt.Errorf("node: %w", err)
		}
	} else if pulled, err := db.PullMissingFiles(ctx, cfg.DataDir); err != nil {
		// A store copied from a shared database keeps the node's keys and
		// tokens: a data directory that lacks them takes them, rather
		// than the node making new ones.
		return nil, fmt.Errorf("node: %w", err)
	} else if pulled > 0 {
		n.log.Info().Int("files", pulled).Msg("took the keys and tokens the store keeps into the data directory")
	}
	defer func() { release() }()
	// Records of stores written by earlier releases are brought up to
	// date, each once (a later start finds nothing to do): what each
	// moves or indexes, and the log line that counts it.
	for _, m := range []struct {
		run        func(context.Context, *store.DB) (int, error)
		unit, what string
	}{
		{cases.MigrateNotes, "cases", "moved case notes out of the case records"},
		{cases.MigrateCounts, "cases", "counted the cases by state"},                                                      // cases/counts.go
		{cases.MigrateClocks, "subjects", "indexed the deadline clocks of cases and reports"},                             // cases/deadlines.go
		{cases.MoveReportClocks, "reports", "moved the deadline clocks of reports into the reports' records"},             // kept in open/ before schema version 3
		{cases.MigrateShortIDs, "ids", "indexed the short ids of cases and reports"},                                      // cases/lookup.go
		{cases.MigrateAdvisoryUpdates, "advisories", "indexed the published advisories by their latest revision"},         // cases/advisories.go
		{cases.MigrateCaseDates, "cases", "indexed the cases by their latest embargo or publication date"},                // cases/dates.go
		{cases.MigrateEndedInvitations, "participants", "declined the invitations that embargo terms in force had ended"}, // cases/invitations.go
	} {
		if done, err := m.run(ctx, db); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		} else if done > 0 {
			n.log.Info().Int(m.unit, done).Msg(m.what)
		}
	}

	for _, ac := range cfg.Actors {
		_, statErr := os.Stat(filepath.Join(keyDir, ac.Name+".pem"))
		created := errors.Is(statErr, fs.ErrNotExist)
		// The store's record names the key a rotation committed; the key
		// files of a rotation are installed or discarded to match it.
		committed, knownAs := "", ""
		switch rec, err := db.LocalActor(ctx, ac.Name); {
		case err == nil:
			committed = rec.PublicKeyPEM
			knownAs, _, _ = strings.Cut(rec.KeyID, "#")
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("node: actor %s: %w", ac.Name, err)
		}
		if created && committed != "" {
			// The store knows the actor by a key this directory does not
			// hold: a new key would make it another actor to every peer.
			return nil, fmt.Errorf("node: actor %s is in the store with a key, but its private key is not in %s: start the node with the data directory it ran with, or copy that directory's keys/ here", ac.Name, keyDir)
		}
		ring, err := actor.LoadKeyRing(keyDir, ac.Name, committed) // the current key of a rotated actor, under its key id
		if err != nil {
			return nil, fmt.Errorf("node: actor %s: %w", ac.Name, err)
		}
		local, err := actor.NewLocal(base, ac.Name, ac.Type, ring.Current)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		local = local.WithRing(ring, cfg.Now())
		key := ring.Current
		pem, err := actor.PublicKeyPEM(&key.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("node: actor %s: %w", ac.Name, err)
		}
		if err := db.PutLocalActor(ctx, store.LocalActor{
			Name: ac.Name, Type: string(ac.Type), KeyID: local.KeyID, PublicKeyPEM: pem, CreatedAt: cfg.Now().UTC(),
		}); err != nil {
			return nil, fmt.Errorf("node: register actor %s: %w", ac.Name, err)
		}
		if knownAs != "" && knownAs != local.ID {
			// A data directory restored on a machine with another
			// address: ids in its cases, and its peers, name the old one.
			n.log.Warn().Str("actor", local.ID).Str("was", knownAs).Msg("the store knew this actor under another public URL: its cases and its peers name the old address and do not follow; start the node with the --public-url it had unless it has moved (docs/operations.md, restoring)")
		}
		if created {
			n.log.Info().Str("actor", local.ID).Str("key_id", local.KeyID).Msg("created actor key")
		} else if committed != "" && strings.TrimSpace(committed) != strings.TrimSpace(pem) {
			n.log.Warn().Str("actor", local.ID).Str("key_id", local.KeyID).Msg("the store named another key than the actor's key files hold; the key files win")
		}
		n.locals[ac.Name] = local
		n.order = append(n.order, ac.Name)
	}

	token, created, err := loadOrCreateToken(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.token = newTokenChecker(token)
	if created {
		fmt.Fprintf(cfg.Notice, "API token (shown once; also in %s): %s\n", filepath.Join(cfg.DataDir, tokenFile), token)
	}
	if n.metricsToken, err = loadMetricsToken(cfg, token); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.accounts, err = accounts.New(accounts.Config{
		Store:                db,
		PublicURL:            base,
		SecondFactorOptional: cfg.SecondFactorOptional,
		Argon2:               cfg.Argon2,
		OIDC:                 cfg.OIDC,
		SSOTokenStanding:     cfg.SSOTokenStanding,
		Now:                  cfg.Now,
		Logger:               cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.OIDC != nil {
		n.services = append(n.services, service{name: "sso-check", run: n.checkSSOProvider})
	}
	// The API token is the first admin's (accounts.Bootstrap).
	if link, err := n.accounts.Bootstrap(ctx, n.token.sum[:]); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	} else if link != "" {
		fmt.Fprintf(cfg.Notice, "The API token is the token of the first admin, admin. Set admin's dashboard password and second factor at %s (shown once; vultron user enroll admin makes a new link)\n", link)
	}

	n.policy, err = policy.New(policy.Config{
		Mode:           cfg.Federation,
		AllowedHosts:   append(slices.Clone(cfg.AllowPeers), n.host),
		PeerRate:       cfg.PeerRate,
		PeerBurst:      cfg.PeerBurst,
		IPRate:         cfg.IPRate,
		IPBurst:        cfg.IPBurst,
		KeyFetchRate:   cfg.KeyFetchRate,
		KeyFetchBurst:  cfg.KeyFetchBurst,
		TrustedProxies: cfg.TrustedProxies,
		ProxyHeaders:   cfg.TrustedProxyHeaders,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}

	// Signed fetches (keys, actor documents) are made as the first local
	// actor: peers that require authorized fetch see a real, verifiable
	// actor of this node.
	// The key is read at every fetch, so a rotation of that actor's key
	// signs the next fetch.
	firstName := n.order[0]
	n.fetcher, err = actor.NewFetcher(actor.FetcherOptions{
		Client: actor.SafeClientOptions{AllowPrivate: cfg.AllowPrivatePeers, RootCAs: cfg.RootCAs},
		Signer: func() (string, *rsa.PrivateKey) {
			n.localsMu.RLock()
			defer n.localsMu.RUnlock()
			l := n.locals[firstName]
			return l.KeyID, l.Key
		},
		Now:       cfg.Now,
		PlainHTTP: n.scheme == "http",
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	keys, err := actor.NewKeyFetcher(actor.KeyFetcherOptions{
		Cache:      keyCache{db: db},
		Fetcher:    n.fetcher,
		AdmitFetch: n.policy.AdmitKeyFetch,
		Now:        cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.keys = keys
	n.verifier, err = actor.NewVerifier(actor.VerifierOptions{
		Keys:   n.policy.Keys(keys),
		Admit:  func(_ context.Context, keyID string) error { return n.policy.AdmitPeer(keyID) },
		Window: cfg.DateWindow,
		Now:    cfg.Now,
		Host:   n.host,
		Scheme: n.scheme,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.buildPipelines(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	// Replicas written before they had sync states get one, so that a tail
	// they lack is found like any other's (cases/sync.go).
	if given, err := n.engine.MigrateSync(ctx, n.db); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	} else if given > 0 {
		n.log.Info().Int("replicas", given).Msg("gave replicas sync states")
	}
	// Reports received before the index of reports awaiting a decision
	// existed are put into it (cases/pending.go).
	if indexed, err := cases.MigratePendingReports(ctx, n.db); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	} else if indexed > 0 {
		n.log.Info().Int("reports", indexed).Msg("indexed the reports awaiting a decision")
	}
	if err := n.buildWebhooks(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.buildDeadlines()
	if err := n.buildIntel(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.buildAutomation(ctx); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.buildSurfaces(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.metrics, err = newMetrics(n); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.handler = n.routes()
	if err := n.shareFiles(ctx, seenFiles); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ok = true
	return n, nil
}

// withRetiredKey adds to err, when it says the store is sealed with a key
// the node does not have, where rotate-key kept that key if it is beside
// the node's key file: a database copied from a store before its key was
// rotated is sealed with the retired key.
func withRetiredKey(err error, cfg Config) error {
	var wrong *store.WrongKeyError
	if !errors.As(err, &wrong) || cfg.DataKey != "" {
		return err
	}
	dir := cfg.DataDir
	if cfg.DataKeyFile != "" {
		dir = filepath.Dir(cfg.DataKeyFile)
	}
	retired := filepath.Join(dir, store.RetiredDataKeyFile(wrong.Sealed))
	if _, statErr := os.Stat(retired); statErr != nil {
		return err
	}
	return fmt.Errorf("%w; rotate-key kept that key in %s: start with it (--data-key-file), or copy the store into a file, rotate that, and copy it back", err, retired)
}

// withMissingKey, when the store is sealed with a key the node does not
// have and the node's key file was missing (LoadDataKeys made it for a
// new store), removes that file, which seals nothing and would pass for
// the node's key, and says where the store's key goes.
func withMissingKey(err error, keys store.DataKeys) error {
	var wrong *store.WrongKeyError
	if keys.Created == "" || !errors.As(err, &wrong) {
		return err
	}
	if rmErr := os.Remove(keys.Created); rmErr != nil {
		return errors.Join(err, rmErr)
	}
	return fmt.Errorf("%w: the store is sealed with data key %s, and there was no data key file %s: put the node's data key there (32 bytes, mode 0600), or give it with --data-key-file or VULTRON_DATA_KEY", store.ErrDataKey, wrong.Sealed, keys.Created)
}

// sharedFiles are the files of the data directory that every process of a
// node on a shared store must hold the same: the actors' keys (and the
// Case Actors'), the API and metrics tokens and the webhook secret.
var sharedFiles = []string{"keys", tokenFile, metricsTokenFile, webhookSecretFile}

// shareFiles stores, on a shared store, the shared files this process
// made or changed since it pulled them at the start (seen). A file
// another process stored meanwhile refuses the start rather than be
// replaced: the start-up lock makes the processes start one at a time,
// but a lock whose session the server ended (a failover) may let two
// overlap, and two processes must never sign with different keys for
// one actor.
func (n *Node) shareFiles(ctx context.Context, seen store.FilesSeen) error {
	if !n.db.Shared() {
		return nil
	}
	if _, err := n.db.PushFilesSince(ctx, n.cfg.DataDir, sharedFiles, seen); err != nil {
		return err
	}
	return nil
}

// shareKey stores, on a shared store, the key file of actor name, which
// this process just made, so that every process signs with it.
func (n *Node) shareKey(ctx context.Context, name string) error {
	return n.shareKeyFiles(ctx, []string{name + ".pem"})
}

// shareKeyFiles stores, on a shared store, the given files of the key
// directory.
func (n *Node) shareKeyFiles(ctx context.Context, names []string) error {
	if !n.db.Shared() {
		return nil
	}
	_, err := n.db.PushFiles(ctx, n.cfg.DataDir, keyPaths(names))
	return err
}

// unshareKeyFiles drops, on a shared store, the given files of the key
// directory from the store.
func (n *Node) unshareKeyFiles(ctx context.Context, names []string) error {
	if !n.db.Shared() {
		return nil
	}
	return n.db.RemoveFiles(ctx, keyPaths(names))
}

func keyPaths(names []string) []string {
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = filepath.Join("keys", name)
	}
	return out
}

// watchKeys keeps, on a shared store, the keys this process signs with for
// the configured actors the ones the store names. Another process rotates
// a key by storing the prepared key files and then committing the actor
// record that names the new key (rotateKey); after each commit this
// process compares the records with its keys, and for one that changed it
// fetches the files and installs them as a start would (LoadKeyRing), once
// they name the committed key.
func (n *Node) watchKeys(ctx context.Context) error {
	for {
		changed := n.db.Changed()
		n.syncKeys(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		// At most one look a second, however busy the store.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// syncKeys installs the keys another process rotated (see watchKeys).
func (n *Node) syncKeys(ctx context.Context) {
	for _, name := range n.order {
		rec, err := n.db.LocalActor(ctx, name)
		if err != nil {
			continue
		}
		n.localsMu.RLock()
		cur := n.locals[name]
		n.localsMu.RUnlock()
		pem, err := actor.PublicKeyPEM(&cur.Key.PublicKey)
		if err != nil || strings.TrimSpace(pem) == strings.TrimSpace(rec.PublicKeyPEM) {
			continue
		}
		ring, prepared := actor.KeyFileNames(name)
		for _, f := range keyPaths(append(ring, prepared...)) {
			if _, err := n.db.PullFile(ctx, n.cfg.DataDir, f); err != nil {
				n.log.Warn().Err(err).Str("actor", name).Msg("fetch the key files of a rotation made by another process")
			}
		}
		kr, err := actor.LoadKeyRing(n.keyDir, name, rec.PublicKeyPEM)
		if err != nil {
			n.log.Warn().Err(err).Str("actor", name).Msg("load the key ring of a rotation made by another process")
			continue
		}
		newPEM, err := actor.PublicKeyPEM(&kr.Current.PublicKey)
		if err != nil || strings.TrimSpace(newPEM) != strings.TrimSpace(rec.PublicKeyPEM) {
			continue // its files are not all here yet: the next commit brings them
		}
		l, err := actor.NewLocal(n.cfg.PublicURL, name, actor.Type(rec.Type), kr.Current)
		if err != nil {
			n.log.Warn().Err(err).Str("actor", name).Msg("install a key rotated by another process")
			continue
		}
		l = l.WithRing(kr, n.cfg.Now())
		n.localsMu.Lock()
		n.locals[name] = l
		n.localsMu.Unlock()
		n.log.Info().Str("actor", l.ID).Str("key_id", l.KeyID).Msg("installed the actor key another process rotated")
	}
}

// fetchSharedKey copies, on a shared store, the key file of actor name
// that another process made into this process's key directory; it reports
// whether it found one.
func (n *Node) fetchSharedKey(ctx context.Context, name string) (bool, error) {
	if !n.db.Shared() {
		return false, nil
	}
	return n.db.PullFile(ctx, n.cfg.DataDir, filepath.Join("keys", name+".pem"))
}

// Handler returns the node's HTTP handler.
func (n *Node) Handler() http.Handler { return n.handler }

// Store returns the node's store, for the commands that inspect it.
func (n *Node) Store() *store.DB { return n.db }

// Local returns the local actor with the given name: a configured actor,
// or the Case Actor of a case this node hosts, loaded from the store and
// its key file the first time it is asked for. A lookup that failed (the
// store did not answer) is logged and reads as no such actor; what
// answers a peer, the API or the dashboard, or sends deliveries, uses
// LocalActor, which tells the two apart. Local serves what looks up the
// configured actors (held in memory) or an actor just loaded.
func (n *Node) Local(name string) (actor.Local, bool) {
	l, ok, err := n.LocalActor(context.Background(), name)
	if err != nil {
		n.log.Warn().Err(err).Str("actor", name).Msg("look up a local actor")
		return actor.Local{}, false
	}
	return l, ok
}

// LocalActor is Local that says when the lookup failed rather than found
// no actor: an error when the store could not be read (a Case Actor this
// process has not loaded yet, after a restart, with its store out of
// reach), so that a peer is answered 503 and tries again, and a delivery
// is retried, rather than told that the actor does not exist.
func (n *Node) LocalActor(ctx context.Context, name string) (actor.Local, bool, error) {
	n.localsMu.RLock()
	l, ok := n.locals[name]
	n.localsMu.RUnlock()
	if ok {
		l.OpenFollowers = n.openFollowers(name)
		return l, true, nil
	}
	if !strings.HasPrefix(name, cases.CaseActorPrefix) {
		return actor.Local{}, false, nil
	}
	rec, err := n.db.LocalActor(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return actor.Local{}, false, nil
	}
	if err != nil {
		return actor.Local{}, false, fmt.Errorf("look up actor %s: %w", name, err)
	}
	key, found, err := actor.LoadKey(n.keyDir, name)
	if !found {
		// Missing or unreadable here: another process of a shared node
		// may have made it, and the store keeps it.
		if _, err := n.fetchSharedKey(ctx, name); err != nil {
			return actor.Local{}, false, fmt.Errorf("fetch the key of case actor %s from the store: %w", name, err)
		}
		key, found, err = actor.LoadKey(n.keyDir, name)
	}
	// The Case Actor exists (its record says so): a key that does not load,
	// is gone or does not match the record is the node's failure, never
	// "no such actor", which would tell a peer that verifies the case's
	// announcements that its actor is not there. A key made now could
	// never match the record's.
	switch {
	case err != nil:
		n.log.Error().Err(err).Str("actor", name).Msg("load case actor key")
		return actor.Local{}, false, fmt.Errorf("load the key of case actor %s: %w", name, err)
	case !found:
		n.log.Error().Str("actor", name).Str("dir", n.keyDir).Msg("case actor key missing")
		return actor.Local{}, false, fmt.Errorf("case actor %s has a record but no key in %s", name, n.keyDir)
	}
	l, err = actor.NewLocal(n.cfg.PublicURL, name, actor.Type(rec.Type), key)
	pem, perr := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil || perr != nil || l.KeyID != rec.KeyID || strings.TrimSpace(pem) != strings.TrimSpace(rec.PublicKeyPEM) {
		n.log.Error().Err(errors.Join(err, perr)).Str("actor", name).Msg("case actor record does not match its key")
		return actor.Local{}, false, fmt.Errorf("the key of case actor %s does not match its record", name)
	}
	n.localsMu.Lock()
	n.locals[name] = l
	n.localsMu.Unlock()
	return l, true, nil
}

// configuredActors returns the node's actors that are not Case Actors, in
// no order.
func (n *Node) configuredActors() []actor.Local {
	n.localsMu.RLock()
	defer n.localsMu.RUnlock()
	var out []actor.Local
	for name, l := range n.locals {
		if !strings.HasPrefix(name, cases.CaseActorPrefix) {
			out = append(out, l)
		}
	}
	return out
}

// Serve serves HTTP and runs the background services until ctx ends, then
// shuts down gracefully: it stops accepting connections, waits for
// in-flight requests and then deliveries (up to ShutdownTimeout for both
// together), and closes the store. Pending deliveries stay queued for the
// next start. What is still running at the deadline is cut short (its
// connections closed, its deliveries abandoned) and the store is closed
// only once it has ended, so nothing the node started outlives Serve.
func (n *Node) Serve(ctx context.Context) error {
	ln := n.cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", n.cfg.Listen)
		if err != nil {
			n.Close()
			return fmt.Errorf("node: listen: %w", err)
		}
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.requests.add()
			defer n.requests.done()
			n.handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	n.log.Info().Str("listen", ln.Addr().String()).Str("public_url", n.cfg.PublicURL).Strs("actors", n.order).Msg("node started")

	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var led []service
	for _, s := range n.services {
		if s.leader {
			led = append(led, s)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(svcCtx); err != nil && !errors.Is(err, context.Canceled) {
				n.log.Error().Err(err).Str("service", s.name).Msg("service stopped")
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		n.runLed(svcCtx, led)
	}()

	n.serving.Store(true)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("node: serve: %w", err)
	case <-n.db.Fenced():
		// Another process rotated the data key of the shared database:
		// this one may write nothing more, and stops, to be started again
		// with the new key.
		err = fmt.Errorf("node: %w: another process rotated the data key of the store; start this process again with the new key", store.ErrDataKeyRotated)
	}
	n.log.Info().Msg("shutting down")
	close(n.stopping)
	// One deadline for the requests and the deliveries after them.
	deadline := time.Now().Add(n.cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		n.log.Warn().Err(serr).Msg("in-flight requests did not finish in time; their connections are closed")
		srv.Close()
	}
	stopServices()
	if !waitTimeout(&wg, time.Until(deadline)) {
		n.log.Warn().Msg("deliveries did not finish in time; they are abandoned and sent again at the next start")
		n.deliverer.Abandon()
	}
	// What was cut short ends within moments; the store closes after it.
	if !waitTimeout(&wg, abandonGrace) || !n.requests.wait(abandonGrace) {
		n.log.Error().Dur("grace", abandonGrace).Msg("requests or services still running after they were cut short; closing the store under them")
	}
	if cerr := n.Close(); cerr != nil && err == nil {
		err = cerr
	}
	n.log.Info().Msg("stopped")
	return err
}

// runLed runs the services led while this process leads the processes
// that share its store, until ctx ends: when the lead is lost (the
// process's hold on the database broke) they are stopped, and run again
// once the lead is back. On a store of its own the process always leads.
func (n *Node) runLed(ctx context.Context, led []service) {
	// Tried every second; logged at most once a minute.
	leadFailed := rate.Sometimes{First: 1, Interval: time.Minute}
	for ctx.Err() == nil {
		lctx, stop, err := n.db.Lead(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			leadFailed.Do(func() {
				n.log.Warn().Err(err).Msg("cannot take the lead; trying again every second (logged at most once a minute)")
			})
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if n.db.Shared() {
			n.log.Info().Msg("this process leads: it runs the timers and sweeps")
		}
		var wg sync.WaitGroup
		for _, s := range led {
			wg.Go(func() {
				if err := s.run(lctx); err != nil && !errors.Is(err, context.Canceled) {
					n.log.Error().Err(err).Str("service", s.name).Msg("service stopped")
				}
			})
		}
		wg.Wait()
		lost := lctx.Err() != nil && ctx.Err() == nil
		stop()
		if !lost {
			return
		}
		n.log.Warn().Msg("lead lost: timers and sweeps stopped until it is back")
	}
}

// abandonGrace bounds how long a shutdown waits, after its deadline, for
// the requests and deliveries it cut short to return: closing their
// connections and cancelling their contexts ends them in milliseconds, so
// only a service that ignores its context is still running after it.
const abandonGrace = 5 * time.Second

// inFlight counts running HTTP handlers. Unlike a sync.WaitGroup it may be
// waited for while handlers still start (a request read just before its
// connection was closed).
type inFlight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero; nil while n is zero
}

func (f *inFlight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *inFlight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.idle)
		f.idle = nil
	}
}

// running returns how many handlers run.
func (f *inFlight) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait waits until no handler runs, or at most d, and says whether none
// does.
func (f *inFlight) wait(d time.Duration) bool {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// waitTimeout waits for wg, or at most d, and says whether wg was done.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(max(d, 0)):
		return false
	}
}

// Close closes the store. Serve calls it; call it yourself only for a node
// that was never served.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.db.Close() })
	return n.closeErr
}

// checkSSOProvider asks the OpenID provider for its discovery document
// once the node serves, and warns when it cannot be had: a typo in the
// issuer, or a provider that is down, shows in the log at the start
// rather than at the first person's login (which asks again).
func (n *Node) checkSSOProvider(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A node stopped meanwhile has nothing to say; a provider that did not
	// answer within the timeout is as unreachable as one that refused.
	if err := n.accounts.CheckSSO(ctx); err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn().Err(err).Str("issuer", n.cfg.OIDC.Issuer).Msg("single sign-on: the identity provider cannot be reached, so nobody can log in through it until it can; check --oidc-issuer")
	}
	return nil
}
