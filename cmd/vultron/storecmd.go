package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/openvultron/vultron/store"
)

// checkStoreURL refuses, as a usage error, a store URL of no known kind,
// and a PostgreSQL URL whose driver refuses it (store.CheckURL says which
// setting, without the password).
func checkStoreURL(flagName, u string) error {
	if !(strings.HasPrefix(u, "bolt:") && len(u) > len("bolt:") || strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")) {
		return usageError("%s %q: a store URL is bolt:PATH or postgres://USER@HOST/DATABASE", flagName, redactStoreURL(u))
	}
	if err := store.CheckURL(u); err != nil {
		return usageError("%s: %v", flagName, err)
	}
	return nil
}

// redactStoreURL hides the password of a store URL in messages.
func redactStoreURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	userinfo := rest[:at]
	if name, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + name + ":***" + rest[at:]
	}
	return u
}

// runMigrate brings a store to this binary's version: a PostgreSQL
// store's tables, or a bbolt store's schema version.
func runMigrate(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("migrate", "vultron migrate --store postgres://USER@HOST/DATABASE | bolt:PATH [--data DATA] [--check]",
		"Create or upgrade the tables of a PostgreSQL store to the version this binary uses.\n"+
			"serve does the same when it starts; run migrate first to upgrade before starting the\n"+
			"new binary's processes, or with a database role that may create tables when the\n"+
			"processes' role may not. It is safe to run while processes serve: migrations are\n"+
			"taken under a lock, one at a time, each in a transaction. The URL may also come from\n"+
			"VULTRON_STORE, and the password from a password file (~/.pgpass, PGPASSFILE) or PGPASSWORD.\n\n"+
			"With bolt:PATH, migrate brings the bbolt store file to this binary's schema version,\n"+
			"as serve does when it opens it, without starting the node (store copy needs a source\n"+
			"at this version). The node must be stopped. A sealed store needs the node's data key:\n"+
			"DATA/data-key (DATA is the file's directory unless --data says otherwise),\n"+
			"--data-key-file or VULTRON_DATA_KEY.\n\n"+
			"With --check, migrate changes nothing: it says what versions the store is at beside\n"+
			"this binary's, and exits 0 when they are the same, 1 when a migration is pending or\n"+
			"the store is newer than this binary, and 3 when it could not read the versions (the\n"+
			"database does not answer, the file is missing or a node holds it); for a deployment\n"+
			"to run before it replaces the processes.", env)
	storeURL := fs.String("store", "", "the store: postgres://USER@HOST/DATABASE or bolt:PATH")
	dataDir := fs.String("data", "", "bbolt only: data directory of the node, for its data key (default: the store file's directory)")
	keyFile := fs.String("data-key-file", "", "bbolt only: file of the node data key (default DATA/data-key)")
	check := fs.Bool("check", false, "change nothing: say whether the store is at this binary's versions (exit 0) or not (exit 1); exit 3 when it cannot tell")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("migrate takes no arguments, got %q", fs.Arg(0))
	}
	if *storeURL == "" {
		*storeURL = env.getenv("VULTRON_STORE")
	}
	if *storeURL == "" {
		return usageError("migrate needs --store postgres://USER@HOST/DATABASE or --store bolt:PATH")
	}
	if err := checkStoreURL("--store", *storeURL); err != nil {
		return err
	}
	if *check {
		if *dataDir != "" || *keyFile != "" {
			return usageError("--check reads the versions without the data key: give it without --data and --data-key-file")
		}
		return checkMigrations(ctx, env, *storeURL)
	}
	if path, ok := strings.CutPrefix(*storeURL, "bolt:"); ok {
		return migrateBolt(ctx, env, path, *dataDir, *keyFile)
	}
	if *dataDir != "" || *keyFile != "" {
		return usageError("--data and --data-key-file are for a bbolt store; the tables of a PostgreSQL store migrate without the data key")
	}
	from, to, err := store.MigratePostgres(ctx, *storeURL)
	if err != nil {
		return err
	}
	if from == to {
		fmt.Fprintf(env.stdout, "tables already at version %d\n", to)
		return nil
	}
	fmt.Fprintf(env.stdout, "tables migrated from version %d to %d\n", from, to)
	return nil
}

// checkUnreadable is the exit status of a migrate --check that could not
// read the store's versions, apart from 1 (a migration is pending).
const checkUnreadable = 3

// checkMigrations says what versions the store at storeURL is at, and
// fails unless they are this binary's.
func checkMigrations(ctx context.Context, env *environment, storeURL string) error {
	st, err := store.CheckSchema(ctx, storeURL)
	if errors.Is(err, store.ErrLocked) {
		err = fmt.Errorf("a node is using %s; stop it before checking its store", st.Desc)
	}
	if err != nil {
		return &exitStatusError{status: checkUnreadable, err: err}
	}
	var at []string
	if st.TablesWant > 0 {
		at = append(at, fmt.Sprintf("tables at version %d (this binary's: %d)", st.Tables, st.TablesWant))
	}
	if st.RecordsKnown {
		at = append(at, fmt.Sprintf("records at version %d (this binary's: %d)", st.Records, st.RecordsWant))
	} else {
		at = append(at, "records unread until the tables are migrated")
	}
	status := fmt.Sprintf("%s: %s", st.Desc, strings.Join(at, ", "))
	switch {
	case st.UpToDate():
		fmt.Fprintf(env.stdout, "%s: nothing to migrate\n", status)
		return nil
	case st.Newer():
		return fmt.Errorf("%s: the store is newer than this binary, which must not serve it", status)
	case st.TablesWant > 0 && st.Tables < st.TablesWant:
		return fmt.Errorf("%s: a migration is pending; run vultron migrate --store with the same URL, then start the processes (the first one migrates the records)", status)
	case st.TablesWant > 0:
		return fmt.Errorf("%s: a migration is pending; the first vultron serve of this binary on it migrates the records", status)
	default:
		return fmt.Errorf("%s: a migration is pending; run vultron migrate --store bolt:%s with the node stopped", status, st.Desc)
	}
}

// migrateBolt brings the bbolt store file at path to this binary's schema
// version, opening it with the node's data key when there is one: from
// VULTRON_DATA_KEY, keyFile, or dataDir/data-key (dataDir defaulting to
// the file's directory). Without a key given and none in the default
// place, the file is opened without one, which opens an unencrypted store
// and refuses a sealed one, saying with which key it is sealed.
func migrateBolt(ctx context.Context, env *environment, path, dataDir, keyFile string) error {
	explicit := dataDir != "" || keyFile != ""
	if dataDir == "" {
		dataDir = filepath.Dir(path)
	}
	keys, err := store.LoadDataKeys(dataDir, keyFile, env.getenv("VULTRON_DATA_KEY"), false)
	switch {
	case errors.Is(err, iofs.ErrNotExist) && !explicit:
		keys = store.DataKeys{}
	case err != nil:
		return fmt.Errorf("read the data key: %w", err)
	}
	from, to, err := store.MigrateBolt(ctx, path, store.Options{DataKey: keys.Current, PreviousDataKey: keys.Previous})
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("a node is using %s; stop it before migrating its store", path)
	case errors.Is(err, store.ErrDataKey) && keys.Current == nil:
		return fmt.Errorf("%s is sealed with the node's data key, and there is none at %s; give migrate the key with --data DATA, --data-key-file FILE or VULTRON_DATA_KEY",
			path, filepath.Join(dataDir, store.DataKeyFile))
	case err != nil:
		return err
	}
	if from == to {
		fmt.Fprintf(env.stdout, "store already at schema version %d\n", to)
		return nil
	}
	fmt.Fprintf(env.stdout, "store migrated from schema version %d to %d\n", from, to)
	return nil
}

// statOK says whether path exists.
// keysToCheckWith reads the data key that checks what (a copy, a backup)
// from --data, --data-key-file or VULTRON_DATA_KEY (which wins, and
// alone checks it too: the processes on PostgreSQL get their key so).
// check is false when none of them is given.
func keysToCheckWith(env *environment, dataDir, keyFile, what string) (keys store.DataKeys, check bool, err error) {
	envKey := env.getenv("VULTRON_DATA_KEY")
	check = dataDir != "" || keyFile != "" || envKey != ""
	if !check {
		return keys, false, nil
	}
	if dataDir == "" && keyFile == "" {
		k, err := store.ParseDataKey(envKey)
		if err != nil {
			return keys, true, fmt.Errorf("read the data key to check %s with: %w", what, err)
		}
		keys.Current, keys.FromEnv = k, true
		return keys, true, nil
	}
	keys, err = store.LoadDataKeys(dataDir, keyFile, envKey, false)
	if errors.Is(err, iofs.ErrNotExist) {
		path := keyFile
		if path == "" {
			path = filepath.Join(dataDir, store.DataKeyFile)
		}
		return keys, true, fmt.Errorf("no data key to check %s with: %s does not exist; give the node's key with --data-key-file FILE or VULTRON_DATA_KEY, or leave out --data and --data-key-file", what, path)
	}
	if err != nil {
		return keys, true, fmt.Errorf("read the data key to check %s with: %w", what, err)
	}
	return keys, true, nil
}

func statOK(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runStore runs the store subcommands.
func runStore(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] != "copy" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(env.stderr, "usage: vultron store copy --from URL --to URL\n\n"+
				"Copy a node's store to another store: from its bbolt file to PostgreSQL, back, or to a\n"+
				"file that checks a backup. Run \"vultron store copy -h\" for its flags.\n")
			return nil
		}
		return usageError("store takes a subcommand: copy (vultron store copy --from URL --to URL)")
	}
	fs := newFlagSet("store copy", "vultron store copy --from URL --to URL",
		"Copy a node's store to another store, of the same kind or the other: from a bbolt file\n"+
			"to PostgreSQL to move a node onto a shared database, or back. Values are copied as\n"+
			"stored, still sealed with the node's data key, so the node keeps its data key (and\n"+
			"DATA/keys, which serve then stores in the database). The source must be at this\n"+
			"binary's schema version (vultron migrate --store bolt:PATH brings a bbolt file there)\n"+
			"and a bbolt source must not be in use: stop the node first. The source is only\n"+
			"read. The destination must be empty. A URL is bolt:PATH or\n"+
			"postgres://USER@HOST/DATABASE. With --data, --data-key-file or VULTRON_DATA_KEY, the\n"+
			"copy is opened with the node's data key afterwards and checked: consistency and audit\n"+
			"chain. The key is DATA/data-key, --data-key-file or VULTRON_DATA_KEY (which wins), and\n"+
			"is read before copying; a source sealed with another key (a backup made before\n"+
			"rotate-key) is refused before copying, naming the key it needs.", env)
	from := fs.String("from", "", "the store to copy")
	to := fs.String("to", "", "the empty store to copy into")
	dataDir := fs.String("data", "", "data directory of the node, to check the copy with its data key (optional)")
	keyFile := fs.String("data-key-file", "", "file of the node data key, to check the copy with (default DATA/data-key; VULTRON_DATA_KEY wins over it)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("store copy takes no arguments, got %q", fs.Arg(0))
	}
	if *from == "" || *to == "" {
		return usageError("store copy needs --from URL and --to URL")
	}
	if err := checkStoreURL("--from", *from); err != nil {
		return err
	}
	if err := checkStoreURL("--to", *to); err != nil {
		return err
	}
	// The key that checks the copy is found before anything is copied: a
	// copy made and then left unchecked would have to be emptied before
	// copying again.
	// VULTRON_DATA_KEY alone checks it too: the processes on PostgreSQL
	// get their key so.
	keys, check, err := keysToCheckWith(env, *dataDir, *keyFile, "the copy")
	if err != nil {
		return err
	}
	if check {
		// A copy that would not open with the key is not made: a backup
		// made before rotate-key is sealed with the retired key.
		sealed, err := store.SealedWith(ctx, *from)
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("a node is using %s; stop it before copying its store", redactStoreURL(*from))
		}
		if err != nil {
			return err
		}
		if sealed != "" && sealed != store.KeyID(keys.Current) && (keys.Previous == nil || sealed != store.KeyID(keys.Previous)) {
			dir := *dataDir
			if *keyFile != "" {
				dir = filepath.Dir(*keyFile)
			}
			hint := "give that key with --data-key-file FILE or VULTRON_DATA_KEY"
			if retired := filepath.Join(dir, store.RetiredDataKeyFile(sealed)); dir != "" && statOK(retired) {
				hint = "rotate-key kept that key: check with --data-key-file " + retired
			}
			return fmt.Errorf("%s is sealed with data key %s, not with the key given (%s), so nothing was copied; %s",
				redactStoreURL(*from), sealed, store.KeyID(keys.Current), hint)
		}
	}
	st, err := store.Copy(ctx, *from, *to)
	switch {
	case errors.Is(err, store.ErrDestinationLocked):
		return fmt.Errorf("a node is using %s; stop it before copying into its store", redactStoreURL(*to))
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("a node is using %s; stop it before copying its store", redactStoreURL(*from))
	case err != nil:
		return err
	}
	fmt.Fprintf(env.stdout, "copied %d buckets, %d keys, %d bytes of values\n", st.Buckets, st.Keys, st.Bytes)
	if !check {
		pages := ""
		if strings.HasPrefix(*from, "bolt:") {
			pages = "its pages are consistent; " // walked as the copy opened it
		}
		fmt.Fprintf(env.stdout, "%sits records and audit chain were not opened (give the data key with --data DATA, --data-key-file FILE or VULTRON_DATA_KEY to check them)\n", pages)
		return nil
	}
	db, err := store.OpenURL(ctx, *to, store.Options{DataKey: keys.Current, PreviousDataKey: keys.Previous})
	if err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	defer db.Close()
	if err := db.Check(ctx); err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	v, err := db.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	if !v.OK {
		return fmt.Errorf("check the copy: its audit chain breaks at record %d: %s", v.BrokenSeq, v.Reason)
	}
	fmt.Fprintf(env.stdout, "the copy opens with data key %s, is consistent, and its audit chain of %d records verifies (head %s)\n",
		store.KeyID(keys.Current), v.Records, v.Head)
	return nil
}
