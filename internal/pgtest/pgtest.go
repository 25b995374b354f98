// Package pgtest gives tests a real PostgreSQL: a throw-away server on
// 127.0.0.1, started from the machine's binaries (initdb, postgres) in a
// temporary directory, and a fresh database per test. It is used by tests
// only.
//
// A test binary shares one server: Main starts it before the tests (when
// VULTRON_TEST_POSTGRES does not already name one, as `make test` does for
// the whole run) and stops it after them. Database returns the URL of a new
// database for one test and drops it at the end of the test. Without the
// binaries (Debian's postgresql package; `make pg-deps`), Database skips
// the test, unless VULTRON_TEST_POSTGRES_REQUIRED is set (`make test` and
// CI set it), when it fails it: a machine that should test PostgreSQL
// never passes without doing so.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables: EnvURL names a running server (a URL whose
// database tests may connect to and create databases from); EnvRequired
// makes a missing server a failure instead of a skip.
const (
	EnvURL      = "VULTRON_TEST_POSTGRES"
	EnvRequired = "VULTRON_TEST_POSTGRES_REQUIRED"
)

// binGlob is where Debian installs the server's binaries, one directory
// per major version.
const binGlob = "/usr/lib/postgresql/*/bin"

// Server is a PostgreSQL server started by Start.
type Server struct {
	// URL connects to its postgres database as its superuser.
	URL  string
	dir  string
	cmd  *exec.Cmd
	done chan error
}

// findBin returns the path of a server binary, or "".
func findBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dirs, _ := filepath.Glob(binGlob)
	for i := len(dirs) - 1; i >= 0; i-- { // the newest version first
		p := filepath.Join(dirs[i], name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// ErrNoBinaries is returned by Start when initdb or postgres is missing.
var ErrNoBinaries = errors.New("pgtest: initdb and postgres not found (install Debian's postgresql: make pg-deps)")

// Start initializes a cluster in a new temporary directory and starts its
// server on a free port of 127.0.0.1, with durability off (fsync,
// synchronous commit): a test's server is thrown away. initdb refuses to
// run as root, so as root both run as the postgres user.
func Start(ctx context.Context) (*Server, error) { return start(ctx, false) }

// StartDurable is Start with PostgreSQL's default durability (fsync, full
// page writes, synchronous commit), for benchmarks whose figures stand
// beside a bbolt file's with fsync.
func StartDurable(ctx context.Context) (*Server, error) { return start(ctx, true) }

func start(ctx context.Context, durable bool) (*Server, error) {
	initdb, postgres := findBin("initdb"), findBin("postgres")
	if initdb == "" || postgres == "" {
		return nil, ErrNoBinaries
	}
	dir, err := os.MkdirTemp(tempParent(), "vultron-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs a postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if err := requirePassword(data); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan error, 1),
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir,
		"-c", "max_connections=300", "-c", "shared_buffers=64MB"}
	if !durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	s.cmd = exec.Command(postgres, args...)
	// The server dies with the test binary even when that is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	s.cmd.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// PasswordRole is the one role a server Start made asks for a password
// (SCRAM) on 127.0.0.1; it trusts every other. The server does not create
// it: a test that needs a password creates it with one, hashed with SCRAM
// (SET password_encryption = 'scram-sha-256' first: before PostgreSQL 14
// the default is md5, which this line refuses).
const PasswordRole = "pgtest_password"

// requirePassword puts the line that asks PasswordRole for its password
// first in the pg_hba.conf of the cluster in data, before initdb's lines
// that trust every role.
func requirePassword(data string) error {
	path := filepath.Join(data, "pg_hba.conf")
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	line := "host all " + PasswordRole + " 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(path, append([]byte(line), old...), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// StartServer starts a server of t's own (Start), stopped when t ends, for
// a test that needs what the shared one may not have (EnvURL may name a
// server that does not ask PasswordRole for a password). Without the
// binaries it skips t, or fails it when EnvRequired is set.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s, err := Start(context.Background())
	if err != nil {
		if errors.Is(err, ErrNoBinaries) && os.Getenv(EnvRequired) == "" {
			t.Skipf("PostgreSQL not available: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// waitReady polls the server until it accepts a connection, it exits, or
// 30 seconds pass.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.URL)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case werr := <-s.done:
			s.done <- werr
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			return fmt.Errorf("pgtest: postgres exited: %v\n%s", werr, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			return fmt.Errorf("pgtest: postgres did not accept connections within 30s: %v\n%s", err, log)
		}
	}
}

// Stop shuts the server down (fast shutdown) and removes its directory.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// tempParent is where the server's directory is made: the temporary
// directory, unless the postgres user (as root) could not reach into it,
// when it is /tmp.
func tempParent() string {
	dir := os.TempDir()
	if os.Geteuid() != 0 {
		return dir
	}
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
	}
	return dir
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shared is the server of this test binary: set by Main, or named by
// EnvURL.
var (
	sharedURL  string
	startErr   error
	dbCounter  atomic.Uint64
	serverOnce sync.Mutex
)

// Main runs a test binary's tests with a server for Database: the one named
// by EnvURL, or one it starts and stops around them. Call it from
// TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	serverOnce.Lock()
	var srv *Server
	if u := os.Getenv(EnvURL); u != "" {
		sharedURL = u
	} else {
		srv, startErr = Start(context.Background())
		if srv != nil {
			sharedURL = srv.URL
			// Child processes the tests start use the same server.
			os.Setenv(EnvURL, srv.URL)
		}
	}
	serverOnce.Unlock()
	code := m.Run()
	if srv != nil {
		srv.Stop()
	}
	return code
}

// Available reports whether Database can give a database, and why not.
func Available() error {
	serverOnce.Lock()
	defer serverOnce.Unlock()
	if sharedURL != "" {
		return nil
	}
	if startErr != nil {
		return startErr
	}
	return errors.New("pgtest: no server: call pgtest.Main from TestMain or set " + EnvURL)
}

// binaryDB is the database of this test binary, created on first use:
// tests get a schema each in it, which costs milliseconds where a
// database costs half a second. Advisory locks are per database, so test
// binaries running at once do not share them.
var (
	binaryDBOnce sync.Once
	binaryDB     string
	binaryDBErr  error
)

func binaryDatabase() (string, error) {
	binaryDBOnce.Do(func() {
		ctx := context.Background()
		name := fmt.Sprintf("vt_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
		admin, err := pgx.Connect(ctx, sharedURL)
		if err != nil {
			binaryDBErr = fmt.Errorf("pgtest: connect: %w", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
			binaryDBErr = fmt.Errorf("pgtest: create database: %w", err)
			return
		}
		u, err := url.Parse(sharedURL)
		if err != nil {
			binaryDBErr = err
			return
		}
		u.Path = "/" + name
		binaryDB = u.String()
	})
	return binaryDB, binaryDBErr
}

// Database returns the URL of a new, empty schema of this test binary's
// database on the shared server (its search_path names the schema, so the
// store's tables are created in it); the schema is dropped when the test
// ends. Without a server it skips the test, or fails it when EnvRequired is
// set.
func Database(t testing.TB) string {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(EnvRequired) != "" {
			t.Fatalf("PostgreSQL is required (%s is set) but not available: %v", EnvRequired, err)
		}
		t.Skipf("PostgreSQL not available: %v", err)
	}
	dbURL, err := binaryDatabase()
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("t%d", dbCounter.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("pgtest: connect to drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// NewDatabase creates a new, empty database on s and returns its URL; it
// is dropped when t ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("vb_%d", dbCounter.Add(1))
	u, err := s.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return u
}

// CreateDatabase creates the database name on the server and returns its
// URL; for programs that are not tests (bench/run), which drop it with
// DropDatabase or with the server.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	admin, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops the database name, closing its connections.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	c, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		return fmt.Errorf("pgtest: connect to drop %s: %w", name, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// Connect connects to the database at url, as a test's administrator
// beside the processes under test, failing t when it cannot; the
// connection is closed when t ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// EndOtherSessions ends every other session on the database of conn, as a
// server restart or a partition does, and waits until their backends have
// exited: pg_terminate_backend returns once it has signalled them, and a
// backend releases its session's locks only as it exits.
func EndOtherSessions(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	var pids []int32
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&pids); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, pids); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) { // polling the server, with a deadline
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ended sessions still there after 10 s", left)
		}
	}
}

// AlterDatabase sets (ALTER DATABASE … setting, such as "SET
// default_transaction_read_only = on" or "RESET lock_timeout") a parameter
// of conn's database for the sessions that start from now on, and ends the
// others (EndOtherSessions), so that the next sessions of the processes
// under test have it, as after a failover or a DBA's change.
func AlterDatabase(t testing.TB, conn *pgx.Conn, setting string) {
	t.Helper()
	ctx := context.Background()
	var name string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` `+setting); err != nil {
		t.Fatalf("alter database %s: %v", setting, err)
	}
	EndOtherSessions(t, conn)
}
