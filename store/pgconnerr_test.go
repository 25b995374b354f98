package store

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/internal/pgtest"
)

// TestPostgresConnectErrorIsOneLine: a connection the server or the
// network refuses is reported in one line that says why, by open, migrate
// and copy alike. With sslmode=prefer (the driver's default) the driver
// tries TLS, then plain text, and reports both attempts on lines of their
// own; the line kept is the server's answer when it gave one, and one
// failure repeated is said once.
func TestPostgresConnectErrorIsOneLine(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	// The test server has no TLS: under prefer, the TLS attempt fails
	// first.
	noDB := url.URL{Scheme: "postgres", User: u.User, Host: u.Host, Path: "/vultron_no_such_database"}
	noServer := url.URL{Scheme: "postgres", User: u.User, Host: "127.0.0.1:1", Path: "/vultron"}
	ops := map[string]func(string) error{
		"open": func(s string) error {
			db, err := OpenURL(ctx, s, Options{NoSync: true})
			if err == nil {
				db.Close()
			}
			return err
		},
		"migrate": func(s string) error {
			_, _, err := MigratePostgres(ctx, s)
			return err
		},
		"copy from": func(s string) error {
			_, err := Copy(ctx, s, "bolt:"+filepath.Join(t.TempDir(), "copy.db"))
			return err
		},
	}
	for _, tc := range []struct {
		name, url, want string
	}{
		{name: "a database that does not exist", url: noDB.String(), want: `database "vultron_no_such_database" does not exist`},
		{name: "no server", url: noServer.String(), want: "connection refused"},
	} {
		for op, do := range ops {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				err := do(tc.url)
				if err == nil {
					t.Fatal("connected")
				}
				msg := err.Error()
				if strings.Contains(msg, "\n") || strings.Count(msg, tc.want) != 1 || strings.Contains(msg, "tls error") {
					t.Errorf("%q; want one line saying %q once, without the TLS attempt", msg, tc.want)
				}
			})
		}
	}
}
