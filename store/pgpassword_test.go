package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/internal/pgtest"
)

// TestANewPasswordInThePassfileIsUsedByNewConnections: the role's password
// is changed and the password file the process read it from is rewritten
// with the new one, as an operator (or a secret store that rotates it)
// does. The connections the server then ends are made again with the new
// password, so writes go on without a restart; before, every new
// connection offered the password read at start and was refused.
func TestANewPasswordInThePassfileIsUsedByNewConnections(t *testing.T) {
	ctx := context.Background()
	const dbname = "rotation"
	passfile := filepath.Join(t.TempDir(), "pgpass")
	su, admin := passwordDatabase(t, dbname, "first-secret", passfile)
	writePass := func(password string) {
		t.Helper()
		writePassfile(t, passfile, su, dbname, password)
	}
	writePass("first-secret")
	u := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.PasswordRole, su.Host, dbname)
	db, err := OpenURL(ctx, u, Options{NoSync: true, DataKey: testKey(9)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(ctx, failIncr("n")); err != nil {
		t.Fatal(err)
	}

	if _, err := admin.Exec(ctx, `ALTER ROLE `+pgtest.PasswordRole+` PASSWORD 'second-secret'`); err != nil {
		t.Fatal(err)
	}
	writePass("second-secret")
	dbConn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", su.Host, dbname))
	if err != nil {
		t.Fatal(err)
	}
	defer dbConn.Close(ctx)
	pgtest.EndOtherSessions(t, dbConn)

	if err := db.Update(ctx, failIncr("n")); err != nil {
		t.Fatalf("a write after the password changed in the password file: %v", err)
	}
	if n := failRead(t, db, "n"); n != 2 {
		t.Errorf("n = %d after two writes, want 2", n)
	}
	// The sessions the engine makes apart from its pool (the lease holder's,
	// the leader's, the listener's, a session lock's) use it too.
	release, err := db.eng.(*pgEngine).sessionLock(ctx, 4242)
	if err != nil {
		t.Fatalf("a session lock after the password changed: %v", err)
	}
	release()
}

// TestAPasswordFileBrieflyGoneKeepsTheLastPassword: a password file that
// cannot be read for a moment (a secret store replacing it, a rewrite
// that removes it first) or that lacks the session's line does not send
// new connections back to the password read at start, which the role no
// longer has since it was changed: they offer the last password the file
// held.
func TestAPasswordFileBrieflyGoneKeepsTheLastPassword(t *testing.T) {
	ctx := context.Background()
	const dbname = "gone"
	passfile := filepath.Join(t.TempDir(), "pgpass")
	su, admin := passwordDatabase(t, dbname, "first-secret", passfile)
	writePassfile(t, passfile, su, dbname, "first-secret")
	u := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.PasswordRole, su.Host, dbname)
	db, err := OpenURL(ctx, u, Options{NoSync: true, DataKey: testKey(9)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dbConn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", su.Host, dbname))
	if err != nil {
		t.Fatal(err)
	}
	defer dbConn.Close(ctx)

	if _, err := admin.Exec(ctx, `ALTER ROLE `+pgtest.PasswordRole+` PASSWORD 'second-secret'`); err != nil {
		t.Fatal(err)
	}
	writePassfile(t, passfile, su, dbname, "second-secret")
	pgtest.EndOtherSessions(t, dbConn)
	if err := db.Update(ctx, failIncr("n")); err != nil {
		t.Fatalf("a write after the password changed in the password file: %v", err)
	}
	for _, gap := range []struct {
		name string
		make func()
	}{
		{"the file is gone", func() {
			if err := os.Remove(passfile); err != nil {
				t.Fatal(err)
			}
		}},
		{"the file has no line for the session", func() { writePassfile(t, passfile, su, "otherdb", "second-secret") }},
	} {
		gap.make()
		pgtest.EndOtherSessions(t, dbConn)
		if err := db.Update(ctx, failIncr("n")); err != nil {
			t.Errorf("%s: a write offered another password than the file's last: %v", gap.name, err)
		}
	}
	if n := failRead(t, db, "n"); n != 3 {
		t.Errorf("n = %d after three writes, want 3", n)
	}
}

// TestPgPassfile: the file is re-read only where the driver would have
// taken the password from it; a password given otherwise wins, as it does
// in the driver and in libpq.
func TestPgPassfile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cases := []struct {
		name, url, pgpassword, pgpassfile, pgservice, want string
	}{
		{"default", "postgres://u@h/d", "", "", "", filepath.Join(home, ".pgpass")},
		{"PGPASSFILE", "postgres://u@h/d", "", "/run/secrets/pgpass", "", "/run/secrets/pgpass"},
		{"the URL's passfile over PGPASSFILE", "postgres://u@h/d?passfile=%2Fetc%2Fpw", "", "/run/secrets/pgpass", "", "/etc/pw"},
		{"a password in the URL", "postgres://u:pw@h/d", "", "/run/secrets/pgpass", "", ""},
		{"an empty password in the URL is none", "postgres://u:@h/d", "", "", "", filepath.Join(home, ".pgpass")},
		{"nor is an empty password setting", "postgres://u@h/d?password=", "", "", "", filepath.Join(home, ".pgpass")},
		{"a password setting", "postgres://u@h/d?password=pw", "", "", "", ""},
		{"PGPASSWORD", "postgres://u@h/d", "pw", "/run/secrets/pgpass", "", ""},
		{"a service", "postgres://u@h/d?service=vultron", "", "", "", ""},
		{"PGSERVICE", "postgres://u@h/d", "", "", "vultron", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", c.pgpassword)
			t.Setenv("PGPASSFILE", c.pgpassfile)
			t.Setenv("PGSERVICE", c.pgservice)
			if got := pgPassfile(c.url); got != c.want {
				t.Errorf("pgPassfile(%q) = %q, want %q", c.url, got, c.want)
			}
		})
	}
}

// TestNoPasswordIsSaid: a password file without a line for the session
// (here, one for another database) offers no password, and the server's
// refusal reads as a wrong password; the error says that none was given
// and where it was looked for, and names no password.
func TestNoPasswordIsSaid(t *testing.T) {
	ctx := context.Background()
	const dbname = "nopassword"
	passfile := filepath.Join(t.TempDir(), "pgpass")
	su, _ := passwordDatabase(t, dbname, "the-secret", passfile)
	writePassfile(t, passfile, su, "otherdb", "the-secret")
	u := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.PasswordRole, su.Host, dbname)
	db, err := OpenURL(ctx, u, Options{NoSync: true, DataKey: testKey(9)})
	if err == nil {
		db.Close()
		t.Fatal("opened without a password")
	}
	want := fmt.Sprintf("no password was given: the URL, PGPASSWORD or the password file %s has none for host %s, port %s, database %s and role %s",
		passfile, su.Hostname(), su.Port(), dbname, pgtest.PasswordRole)
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "the-secret") {
		t.Errorf("open: %v; want it to say %q", err, want)
	}

	// With the right password, wrong: no such hint.
	t.Setenv("PGPASSWORD", "not-the-secret")
	if db, err := OpenURL(ctx, u, Options{NoSync: true, DataKey: testKey(9)}); err == nil {
		db.Close()
		t.Fatal("opened with a wrong password")
	} else if strings.Contains(err.Error(), "no password was given") || strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("open with a wrong password: %v; want no hint of a missing password, and no password", err)
	}
}

// passwordDatabase starts a server of t's own with the database dbname,
// owned by pgtest.PasswordRole with password, and has this process take
// its passwords from passfile alone (PGPASSFILE; PGPASSWORD empty). It
// returns the server's URL and an administrator's connection.
func passwordDatabase(t *testing.T, dbname, password, passfile string) (*url.URL, *pgx.Conn) {
	t.Helper()
	srv := pgtest.StartServer(t)
	admin := pgtest.Connect(t, srv.URL)
	for _, q := range []string{
		// The hash the server's line for the role asks for, whatever
		// the server's default (md5 before PostgreSQL 14).
		`SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE ` + pgtest.PasswordRole + ` LOGIN PASSWORD '` + password + `'`,
		`CREATE DATABASE ` + dbname + ` OWNER ` + pgtest.PasswordRole,
	} {
		if _, err := admin.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	su, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", passfile)
	return su, admin
}

// writePassfile writes passfile with one line: password for
// pgtest.PasswordRole on database dbname of the server at su.
func writePassfile(t *testing.T, passfile string, su *url.URL, dbname, password string) {
	t.Helper()
	line := fmt.Sprintf("%s:%s:%s:%s:%s\n", su.Hostname(), su.Port(), dbname, pgtest.PasswordRole, password)
	if err := os.WriteFile(passfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}
