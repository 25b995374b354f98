package store

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgpassfile"
	"github.com/jackc/pgx/v5"
)

// pgPassfile returns the password file (libpq's .pgpass format) whose
// password each new session of the database at connString is to offer:
// the URL's passfile setting, else PGPASSFILE, else ~/.pgpass. It returns
// "" when a password is given otherwise — in the URL (its userinfo or
// its password setting) or in PGPASSWORD; an empty one is none, as the
// driver has it — or may be, by a service file
// (the URL's service setting or PGSERVICE), since those win over the file.
//
// The driver reads the file once, when the URL is parsed, so a process
// kept offering the password it started with: after the role's password
// was changed and the file rewritten (by an operator, or by a secret store
// that rotates it), every new session was refused until a restart. libpq
// reads the file at each connection; so does the store, through
// freshPassword.
func pgPassfile(connString string) string {
	u, err := url.Parse(connString)
	if err != nil {
		return ""
	}
	q := u.Query()
	if pw, _ := u.User.Password(); pw != "" || q.Get("password") != "" || q.Has("service") ||
		os.Getenv("PGPASSWORD") != "" || os.Getenv("PGSERVICE") != "" {
		return ""
	}
	if p := q.Get("passfile"); p != "" {
		return p
	}
	if p := os.Getenv("PGPASSFILE"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".pgpass")
}

// freshPassword sets the password cc offers to the one e.passfile holds now
// for cc's host, port, database and role, as the driver looks it up. When
// there is no file to read, the file cannot be read or it has no line for
// the session, it offers the last password the file held (the one read at
// start until the file changes): a file being rewritten or briefly gone
// does not take away a password that worked, nor send new connections
// back to the one the role had before it was changed.
func (e *pgEngine) freshPassword(cc *pgx.ConnConfig) {
	if e.passfile == "" {
		return
	}
	if pf, err := pgpassfile.ReadPassfile(e.passfile); err == nil {
		host := cc.Host
		if strings.HasPrefix(host, "/") { // a Unix socket's directory
			host = "localhost"
		}
		if pw := pf.FindPassword(host, strconv.Itoa(int(cc.Port)), cc.Database, cc.User); pw != "" {
			e.lastPassword.Store(&pw)
			cc.Password = pw
			return
		}
	}
	if last := e.lastPassword.Load(); last != nil {
		cc.Password = *last
	}
}

// connConfig returns a copy of the configuration of e's sessions, with the
// password the password file holds now (freshPassword), for a session made
// apart from the pool (the listener's, the lease holder's, the leader's, a
// session lock's).
func (e *pgEngine) connConfig() *pgx.ConnConfig {
	cc := e.cfg.ConnConfig.Copy()
	e.freshPassword(cc)
	return cc
}
