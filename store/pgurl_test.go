package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestPostgresURLNamesTheWrongSetting: a URL whose query PostgreSQL's
// driver refuses is refused with the name and value of the wrong setting,
// and never with the password (of the userinfo or of a password=
// parameter), by every path that takes a URL: open (serve), migrate, and
// copy from or to it. No server is needed: the URL is refused before any
// connection.
func TestPostgresURLNamesTheWrongSetting(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(src, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	const base = "postgres://vultron:hunter2@127.0.0.1:55432/vultron?password=s3cret&"
	for _, c := range []struct{ query, want string }{
		{"sslmode=bogus", `sslmode="bogus"`},
		{"pool_max_conns=abc", `pool_max_conns="abc"`},
		{"application_name=node&pool_max_conns=0", `pool_max_conns="0"`},
		{"connect_timeout=soon", `connect_timeout="soon"`},
	} {
		u := base + c.query
		_, openErr := OpenURL(ctx, u, Options{})
		_, _, migrateErr := MigratePostgres(ctx, u)
		_, fromErr := Copy(ctx, u, "bolt:"+filepath.Join(t.TempDir(), "copy.db"))
		_, toErr := Copy(ctx, "bolt:"+src, u)
		checkErr := CheckURL(u)
		for what, err := range map[string]error{"open": openErr, "migrate": migrateErr, "copy from": fromErr, "copy to": toErr, "check": checkErr} {
			switch {
			case !errors.Is(err, ErrInvalid):
				t.Errorf("%s %s: %v, want ErrInvalid", what, c.query, err)
			case !strings.Contains(err.Error(), c.want):
				t.Errorf("%s %s: %q does not name the setting %s", what, c.query, err, c.want)
			case strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret"):
				t.Errorf("%s %s: %q shows the password", what, c.query, err)
			}
		}
	}
}

// TestPostgresURLProblemHidesSecrets: a refused setting whose name says it
// is a secret is named without its value, and the parser is never given
// the password of the userinfo; a setting refused only with others is
// named as such.
func TestPostgresURLProblemHidesSecrets(t *testing.T) {
	const u = "postgres://vultron:hunter2@127.0.0.1/vultron?sslmode=require&sslpassword=s3cret&application_name=a&passfile=%2Fetc%2Fpw"
	var seen []string
	refuse := func(bad func(string) bool) func(string) error {
		return func(s string) error {
			seen = append(seen, s)
			if bad(s) {
				return errors.New("cannot parse `" + s + "`: refused")
			}
			return nil
		}
	}
	for _, c := range []struct {
		name string
		bad  func(string) bool
		want string
	}{
		{"sslpassword", func(s string) bool { return strings.Contains(s, "sslpassword") },
			": the setting sslpassword is not valid (its value is not shown)"},
		{"passfile", func(s string) bool { return strings.Contains(s, "passfile") },
			": the setting passfile is not valid (its value is not shown)"},
		{"combination", func(s string) bool {
			return strings.Contains(s, "sslmode") && strings.Contains(s, "application_name")
		}, `: the setting application_name="a" is not valid with the settings before it (refused)`},
		{"no query", func(string) bool { return true }, ": refused"},
	} {
		seen = nil
		if got := pgURLProblem(u, refuse(c.bad)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		for _, s := range seen {
			if strings.Contains(s, "hunter2") {
				t.Errorf("%s: the parser was given the password: %s", c.name, s)
			}
		}
	}
}
