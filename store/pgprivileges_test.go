package store

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/openvultron/vultron/internal/pgtest"
)

// TestPostgresRoleWithoutPrivilegesIsToldWhatToDo: a role that may not
// create the tables, or may not read and write one of them (a table a
// migration added after the role's GRANT), is refused at open with what
// to run, naming the tables it misses, rather than opening and failing at
// the first write of such a table; the same for the destination of a copy.
func TestPostgresRoleWithoutPrivilegesIsToldWhatToDo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// tables: the node's tables exist (made by the database's owner).
		tables bool
		// grant: the tables the role may read and write.
		grant []string
		// copyTo: the role is the destination of a copy, not opened.
		copyTo  bool
		want    []string
		notWant []string
	}{
		{name: "no tables", want: []string{"may not create or change the tables", "run `vultron migrate`"}, notWant: []string{"start the node"}},
		{name: "copy into no tables", copyTo: true, want: []string{"may not create or change the tables", "run `vultron migrate`"}, notWant: []string{"start the node"}},
		{name: "tables without a grant", tables: true,
			want: []string{"vultron_buckets", "vultron_kv", "vultron_schema_migrations", "vultron_bucket_generation",
				"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"}},
		{name: "a table the grant missed", tables: true, grant: []string{"vultron_buckets", "vultron_kv", "vultron_schema_migrations"},
			want:    []string{"vultron_bucket_generation", "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"},
			notWant: []string{"vultron_kv", "vultron_buckets"}},
		{name: "copy into a table the grant missed", tables: true, copyTo: true, grant: []string{"vultron_buckets", "vultron_kv", "vultron_schema_migrations"},
			want: []string{"vultron_bucket_generation", "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := pgtest.Database(t)
			roleURL, role, schema := readWriteRole(t, u)
			if tc.tables {
				admin, err := OpenURL(ctx, u, Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := admin.Close(); err != nil {
					t.Fatal(err)
				}
			}
			conn, err := pgx.Connect(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for _, table := range tc.grant {
				q := `GRANT SELECT, INSERT, UPDATE, DELETE ON ` + schema + `.` + table + ` TO ` + role
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if tc.copyTo {
				src := "bolt:" + filepath.Join(t.TempDir(), "src.db")
				db, err := OpenURL(ctx, src, Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				mustPutActor(t, db, "vendor")
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				_, err = Copy(ctx, src, roleURL)
				checkRefusal(t, err, tc.want, tc.notWant, schema, role)
				return
			}
			db, err := OpenURL(ctx, roleURL, Options{NoSync: true})
			if err == nil {
				db.Close()
			}
			checkRefusal(t, err, tc.want, tc.notWant, schema, role)
		})
	}
}

// readWriteRole creates a role that may log in and use the schema of the
// test database u, and nothing else; it returns u as that role, the role
// and the schema. The role goes when the test ends.
func readWriteRole(t *testing.T, u string) (roleURL, role, schema string) {
	t.Helper()
	ctx := context.Background()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	schema = parsed.Query().Get("search_path")
	role = "vultron_rw_" + schema
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(ctx)
		for _, q := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	parsed.User = url.User(role)
	return parsed.String(), role, schema
}

// checkRefusal fails t unless err is a refusal that says every one of
// want and none of notWant ({schema} and {role} in them replaced by schema
// and role).
func checkRefusal(t *testing.T, err error, want, notWant []string, schema, role string) {
	t.Helper()
	if err == nil {
		t.Fatal("the role was not refused")
	}
	r := strings.NewReplacer("{schema}", schema, "{role}", role)
	for _, w := range want {
		if w = r.Replace(w); !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
	for _, w := range notWant {
		if w = r.Replace(w); strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q says %q", err, w)
		}
	}
}

// TestCheckSchemaWithoutPrivilegesIsToldWhatToDo: `vultron migrate
// --check` run as a role that may not read the node's tables says which
// tables and the GRANT to run, as a start with that role does, not only
// the server's "permission denied" for the first table it read.
func TestCheckSchemaWithoutPrivilegesIsToldWhatToDo(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	roleURL, role, schema := readWriteRole(t, u)
	admin, err := OpenURL(ctx, u, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = CheckSchema(ctx, roleURL)
	checkRefusal(t, err, []string{"vultron_schema_migrations", "vultron_kv",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"}, nil, schema, role)
}
