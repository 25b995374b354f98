package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"strings"

	"github.com/openvultron/vultron/store"
)

// runRotateKey replaces the node data key of a stopped node and
// re-encrypts its store, a bbolt file or a PostgreSQL database, under the
// new key.
func runRotateKey(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("rotate-key", "vultron rotate-key [--store URL] [flags]",
		"Replace the node data key that encrypts case content: generate a new key, write it to\n"+
			"the key file, and re-encrypt every sealed value under it in one transaction. Every\n"+
			"process of the node must be stopped: rotate-key refuses while one has the store open,\n"+
			"and no process starts while it runs. The previous key stays in data-key.previous until\n"+
			"the re-encryption is done; if rotate-key is interrupted, run it again to finish. Then\n"+
			"the old key is kept as data-key.retired-ID: backups, and copies of the store, are\n"+
			"sealed with it. Move it to where those backups' keys are kept.\n\n"+
			"A bbolt store (the default, DATA/vultron.db) is compacted afterwards, so that no page\n"+
			"keeps the old ciphertext. A PostgreSQL store (--store postgres://…, or VULTRON_STORE)\n"+
			"needs the key file (--data DATA for DATA/data-key, or --data-key-file); start its\n"+
			"processes with the new key afterwards. A process that lost its connection while the\n"+
			"key was rotated, and so was not seen, stops at its next write and asks to be started\n"+
			"with the new key.", env)
	dataDir := fs.String("data", "./data", "data directory of the stopped node (its data-key, and its vultron.db for bbolt)")
	keyFile := fs.String("data-key-file", "", "file of the node data key (default DATA/data-key)")
	storeURL := fs.String("store", "", "the store: bolt:PATH (default bolt:DATA/vultron.db) or postgres://USER@HOST/DATABASE")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("rotate-key takes no arguments, got %q", fs.Arg(0))
	}
	if env.getenv("VULTRON_DATA_KEY") != "" {
		return usageError("VULTRON_DATA_KEY is set, and rotate-key cannot rewrite it: write the key to a file (base64 -d), unset VULTRON_DATA_KEY, rotate with --data-key-file FILE, and set the variable from the new file")
	}
	if *storeURL == "" {
		*storeURL = env.getenv("VULTRON_STORE")
	}
	if *storeURL == "" {
		*storeURL = "bolt:" + filepath.Join(*dataDir, "vultron.db")
	}
	if err := checkStoreURL("--store", *storeURL); err != nil {
		return err
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*dataDir, store.DataKeyFile)
	}
	path, isBolt := strings.CutPrefix(*storeURL, "bolt:")
	rot, err := store.RotateDataKey(ctx, *storeURL, *keyFile, store.Options{})
	var pathErr *iofs.PathError
	switch {
	case errors.Is(err, store.ErrLocked) && isBolt:
		return fmt.Errorf("a node is running on %s; stop it before rotating its data key", path)
	case errors.Is(err, store.ErrLocked):
		return errors.New("other processes have the PostgreSQL store open; stop every process of the node before rotating its data key")
	case isBolt && errors.As(err, &pathErr) && pathErr.Path == path && errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("there is no store file %s: for a node on PostgreSQL, name its store with --store postgres://… (docs/operations.md)", path)
	case errors.As(err, &pathErr) && pathErr.Path == *keyFile && errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("there is no data key file %s: give rotate-key the node's key file with --data DATA or --data-key-file FILE", *keyFile)
	case err != nil:
		return err
	}
	done := "file compacted"
	if !isBolt {
		done = "PostgreSQL keeps the old ciphertext in dead row versions until vacuum reclaims them, and in its WAL and backups"
	}
	if rot.Resumed {
		fmt.Fprintf(env.stdout, "finished the interrupted rotation from data key %s to %s: %d values re-encrypted; %s\n", rot.OldKeyID, rot.NewKeyID, rot.Resealed, done)
	} else {
		fmt.Fprintf(env.stdout, "data key %s replaced by %s: %d values re-encrypted; %s\n", rot.OldKeyID, rot.NewKeyID, rot.Resealed, done)
	}
	fmt.Fprintf(env.stdout, "the new key is in %s; the old key is kept in %s: backups and copies of the store made before now need it; move it to where you keep their keys\n", *keyFile, rot.Retired)
	if !isBolt {
		fmt.Fprintf(env.stdout, "start the node's processes with the new key (VULTRON_DATA_KEY from %s, or --data-key-file)\n", *keyFile)
	}
	return nil
}
