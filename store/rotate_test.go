package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// newKeyedStore creates dir/vultron.db sealed with a new dir/data-key, filled
// by fillStore, and returns the db path and the key.
func newKeyedStore(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	keys, err := LoadDataKeys(dir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vultron.db")
	db, err := Open(path, Options{DataKey: keys.Current})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, keys.Current
}

func TestRotateDataKey(t *testing.T) {
	dir := t.TempDir()
	path, oldKey := newKeyedStore(t, dir)

	rot, err := RotateDataKey(context.Background(), path, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Resumed || rot.OldKeyID != KeyID(oldKey) || rot.OldKeyID == rot.NewKeyID || rot.Resealed < 6 {
		t.Fatalf("rotation = %+v", rot)
	}
	if _, err := os.Stat(filepath.Join(dir, DataKeyPreviousFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data-key.previous left behind: %v", err)
	}
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(keys.Current, oldKey) || KeyID(keys.Current) != rot.NewKeyID || keys.Previous != nil {
		t.Fatalf("key file after rotation: id %s, previous %v", KeyID(keys.Current), keys.Previous != nil)
	}
	if rawContains(t, path, marker) {
		t.Fatal("raw file holds the marker after rotation")
	}

	// The old key opens nothing: not the file, and not any value in it.
	if _, err := Open(path, Options{DataKey: oldKey}); !errors.Is(err, ErrDataKey) {
		t.Fatalf("open with the old key: %v", err)
	}
	old, _ := newSealer(oldKey, nil)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	oldID := keyID(oldKey)
	if bytes.Contains(raw, append([]byte{sealTag}, oldID[:]...)) {
		t.Fatal("a value sealed with the old key is still in the file")
	}
	db, err := Open(path, Options{DataKey: keys.Current})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStore(t, db)
	err = db.View(context.Background(), func(tx *ReadTx) error {
		v := tx.tx.Bucket(bucketActivities).Get([]byte("https://peer.example/activities/1"))
		if _, err := old.open(string(bucketActivities), []byte("https://peer.example/activities/1"), v); !errors.Is(err, ErrDataKey) {
			t.Errorf("old key opened a rotated value: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRotateDataKeyResumes simulates a crash after the new key was installed
// and before the re-encryption: the file opens with both keys, and a second
// rotate-key finishes the rotation instead of generating a third key.
// TestRotateDataKeyKeepsTheRetiredKey rotates the key of a store whose
// backup (or a PostgreSQL database copied from it) is sealed with the old
// key: the old key is kept beside the new one, under its id, so that the
// backup still opens.
func TestRotateDataKeyKeepsTheRetiredKey(t *testing.T) {
	dir := t.TempDir()
	path, oldKey := newKeyedStore(t, dir)
	backup := filepath.Join(t.TempDir(), "backup.db")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rot, err := RotateDataKey(context.Background(), path, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	retired := filepath.Join(dir, RetiredDataKeyFile(rot.OldKeyID))
	if rot.Retired != retired {
		t.Errorf("rotation says the retired key is at %q, want %q", rot.Retired, retired)
	}
	keys, err := LoadDataKeys(dir, retired, "", false)
	if err != nil {
		t.Fatalf("the retired key: %v", err)
	}
	if !bytes.Equal(keys.Current, oldKey) {
		t.Fatalf("the retired key file holds key %s, want the old key %s", KeyID(keys.Current), rot.OldKeyID)
	}
	db, err := Open(backup, Options{DataKey: keys.Current})
	if err != nil {
		t.Fatalf("the backup with the retired key: %v", err)
	}
	db.Close()
	// The store itself opens with the new key alone.
	cur, err := LoadDataKeys(dir, "", "", false)
	if err != nil || cur.Previous != nil {
		t.Fatalf("the node's keys after rotation: %v, previous %v", err, cur.Previous != nil)
	}
}

func TestRotateDataKeyResumes(t *testing.T) {
	dir := t.TempDir()
	path, oldKey := newKeyedStore(t, dir)
	newKey := testKey(7)
	if err := os.Rename(filepath.Join(dir, DataKeyFile), filepath.Join(dir, DataKeyPreviousFile)); err != nil {
		t.Fatal(err)
	}
	if err := writeKeyFile(filepath.Join(dir, DataKeyFile), newKey); err != nil {
		t.Fatal(err)
	}

	rot, err := RotateDataKey(context.Background(), path, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rot.Resumed || rot.OldKeyID != KeyID(oldKey) || rot.NewKeyID != KeyID(newKey) {
		t.Fatalf("rotation = %+v", rot)
	}
	if _, err := os.Stat(filepath.Join(dir, DataKeyPreviousFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data-key.previous left behind: %v", err)
	}
	db, err := Open(path, Options{DataKey: newKey})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStore(t, db)
}

func TestRotateDataKeyRefusesARunningNode(t *testing.T) {
	dir := t.TempDir()
	path, key := newKeyedStore(t, dir)
	db, err := Open(path, Options{DataKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = RotateDataKey(context.Background(), path, "", Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("rotate while open: %v, want ErrLocked", err)
	}
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil || !bytes.Equal(keys.Current, key) || keys.Previous != nil {
		t.Fatalf("a refused rotation changed the key files: %v", err)
	}
}

// TestRotateDataKeyResealsTheChangeFeedAndFiles checks that a rotation
// re-encrypts every sealed bucket: the change feed and the shared files
// too, which must read back with the new key once the old one is gone.
func TestRotateDataKeyResealsTheChangeFeedAndFiles(t *testing.T) {
	dir := t.TempDir()
	path, oldKey := newKeyedStore(t, dir)
	ctx := context.Background()
	db, err := Open(path, Options{DataKey: oldKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *Tx) error {
		return tx.AppendEvent(Event{CaseID: "case-1", EventType: marker})
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api-token"), []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PushFiles(ctx, dir, []string{"api-token"}); err != nil || n != 1 {
		t.Fatalf("PushFiles = %d, %v", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateDataKey(ctx, path, "", Options{}); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{DataKey: keys.Current})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events, err := db.EventsAfter(ctx, 0, 10)
	if err != nil || len(events) != 1 || events[0].EventType != marker {
		t.Errorf("change feed after rotation: %+v, %v", events, err)
	}
	out := t.TempDir()
	if n, err := db.PullFiles(ctx, out); err != nil || n != 1 {
		t.Fatalf("PullFiles after rotation = %d, %v", n, err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "api-token")); err != nil || string(got) != marker {
		t.Errorf("shared file after rotation: %q, %v", got, err)
	}
}
