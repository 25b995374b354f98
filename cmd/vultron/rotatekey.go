package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"

	"github.com/openvultron/vultron/store"
)

// runRotateKey replaces the node data key of a stopped node's data directory
// and re-encrypts its store under the new key.
func runRotateKey(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("rotate-key", "vultron rotate-key [flags]",
		"Replace the node data key that encrypts case content in DATA/vultron.db: generate a\n"+
			"new key, re-encrypt every sealed value under it and compact the file so no page keeps\n"+
			"the old ciphertext. The node must be stopped. The previous key stays in\n"+
			"data-key.previous until the re-encryption is done; if rotate-key is interrupted, run it\n"+
			"again to finish. Then the old key is kept as data-key.retired-ID: backups, and a\n"+
			"PostgreSQL database copied from this store, are sealed with it. Move it to where those\n"+
			"backups' keys are kept.", env)
	dataDir := fs.String("data", "./data", "data directory of the stopped node")
	keyFile := fs.String("data-key-file", "", "file of the node data key (default DATA/data-key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("rotate-key takes no arguments, got %q", fs.Arg(0))
	}
	if env.getenv("VULTRON_DATA_KEY") != "" {
		return usageError("the data key comes from VULTRON_DATA_KEY, which rotate-key cannot rewrite; write it to a key file, rotate, and set the variable from the new file")
	}
	path := filepath.Join(*dataDir, "vultron.db")
	rot, err := store.RotateDataKey(ctx, path, *keyFile, store.Options{})
	var pathErr *iofs.PathError
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("a node is running on %s; stop it before rotating its data key", *dataDir)
	case errors.As(err, &pathErr) && pathErr.Path == path && errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("there is no store file %s: rotate-key rotates the data key of a stopped node's bbolt file (a store on PostgreSQL is rotated through a bbolt copy, docs/operations.md)", path)
	case err != nil:
		return err
	}
	if rot.Resumed {
		fmt.Fprintf(env.stdout, "finished the interrupted rotation from data key %s to %s: %d values re-encrypted, file compacted\n", rot.OldKeyID, rot.NewKeyID, rot.Resealed)
	} else {
		fmt.Fprintf(env.stdout, "data key %s replaced by %s: %d values re-encrypted, file compacted\n", rot.OldKeyID, rot.NewKeyID, rot.Resealed)
	}
	fmt.Fprintf(env.stdout, "the old key is kept in %s: backups and copies of the store made before now need it; move it to where you keep their keys\n", rot.Retired)
	return nil
}
