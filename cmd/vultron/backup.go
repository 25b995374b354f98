package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/store"
)

func runBackup(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("backup", "vultron backup FILE [--data DATA | --data-key-file FILE] [flags]",
		"Take a backup of a running node's bbolt store into FILE, a new file: the node copies its\n"+
			"store as one consistent state while it goes on working, and sends it. The copy is sealed\n"+
			"with the node's data key, as the store is: keep the key, with its id printed here, apart\n"+
			"from the backup. FILE is written under FILE.partial, checked (every page read; with\n"+
			"--data, --data-key-file or VULTRON_DATA_KEY it is also opened with the key, and its\n"+
			"delivery index and audit chain are checked), and named FILE once whole and checked: a\n"+
			"backup that does not hold is not kept, and a FILE that appeared meanwhile is not\n"+
			"replaced. Needs a token with the admin scope. A node on PostgreSQL is backed up with\n"+
			"PostgreSQL's tools (docs/operations.md).", env)
	nf := addNodeFlags(fs)
	dataDir := nf.dataDir
	fs.Lookup("data").Usage = "the node's data directory: its data key checks the backup, its api-token is the token (before a login)\nwhen no --token-file or VULTRON_TOKEN_FILE names one, and the node is the one serve started there (its\nnode-url) when no --node or VULTRON_NODE names one (optional)"
	keyFile := fs.String("data-key-file", "", "file of the node data key, to check the backup with (default DATA/data-key; VULTRON_DATA_KEY wins over it)")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("backup needs one argument, the new file to write the backup to (vultron backup FILE)")
	}
	dest := fs.Arg(0)
	keys, check, err := keysToCheckWith(env, *dataDir, *keyFile, "the backup")
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("%s exists; give a new file for the backup (nothing was written)", dest)
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("cannot write the backup to %s: %w", dest, err)
	}
	partial := dest + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, iofs.ErrExist) {
		return fmt.Errorf("%s exists, left by a backup that did not finish or being written by another: remove it, or give another file", partial)
	}
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("cannot write the backup to %s: the directory %s does not exist; make it, or give a file in a directory that does (nothing was taken)", dest, filepath.Dir(dest))
	}
	if err != nil {
		return fmt.Errorf("cannot write the backup: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(partial)
		}
	}()
	hdr, n, err := c.download(ctx, "/api/backup", f)
	if err != nil {
		return fmt.Errorf("no backup taken: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write the backup to %s: %w", partial, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the backup to %s: %w", partial, err)
	}

	// Checked before it is named: a backup that does not hold is not kept.
	var key, previous []byte
	if check {
		key, previous = keys.Current, keys.Previous
	}
	bc, checkErr := store.CheckBackup(ctx, partial, key, previous)
	if !sealedWithAnotherKey(checkErr) && checkErr != nil {
		return fmt.Errorf("the backup the node sent does not hold, and is not kept: %w; take it again, and if it fails again check the node's store (docs/operations.md, Backups)", checkErr)
	}
	switch err := nameNew(partial, dest); {
	case errors.Is(err, iofs.ErrExist):
		keep = true
		return fmt.Errorf("%s appeared while the backup was taken, and is left as it is: the backup is in %s; move it to a new file", dest, partial)
	case err != nil:
		return fmt.Errorf("name the backup %s: %w", dest, err)
	}
	keep = true
	syncDir(filepath.Dir(dest))
	keyID := hdr.Get(api.HeaderDataKeyID)
	if keyID == "" {
		fmt.Fprintf(env.stdout, "wrote %s: %d bytes, not sealed\n", dest, n)
	} else {
		fmt.Fprintf(env.stdout, "wrote %s: %d bytes, sealed with data key %s\n", dest, n, keyID)
	}
	if checkErr != nil {
		return fmt.Errorf("the backup in %s is sealed with data key %s, not with the key given (%s): keep the node's key %s with it; the backup was not checked beyond its pages",
			dest, bc.DataKeyID, store.KeyID(keys.Current), bc.DataKeyID)
	}
	if bc.Opened {
		fmt.Fprintf(env.stdout, "the backup opens with data key %s, is consistent, and its audit chain of %d records verifies (head %s)\n", bc.DataKeyID, bc.AuditRecords, bc.AuditHead)
	} else {
		fmt.Fprintf(env.stdout, "the backup's pages are consistent (give the data key with --data or --data-key-file to check its records too)\n")
	}
	return nil
}

// nameNew gives the file at from the name to, a name no file has: unlike
// a rename, it never replaces a file (or a symlink) that appeared at to
// meanwhile, and returns an error wrapping fs.ErrExist then. On a file
// system without hard links it renames, which replaces.
func nameNew(from, to string) error {
	err := os.Link(from, to)
	if errors.Is(err, iofs.ErrExist) {
		return err
	}
	if err != nil {
		return os.Rename(from, to)
	}
	return os.Remove(from)
}

// syncDir flushes a directory's entries (a rename in it) to disk, where the
// system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// sealedWithAnotherKey reports whether err, of store.CheckBackup, says only
// that the backup is sealed with another key than the one given: such a
// backup is whole and is kept, with the key it needs named. A damaged
// backup is not, even when what is damaged is a sealed value that does
// not open (store.ErrDamaged wrapping store.ErrDataKey).
func sealedWithAnotherKey(err error) bool {
	return errors.Is(err, store.ErrDataKey) && !errors.Is(err, store.ErrDamaged)
}
