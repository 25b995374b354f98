package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/internal/pgtest"
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

// openChecked opens the store at u with opts, checks that it holds what
// fillStore put in, and closes it when the test ends.
func openChecked(t *testing.T, u string, opts Options) *DB {
	t.Helper()
	db, err := OpenURL(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	checkStore(t, db)
	return db
}

// wantKeyFilesUnchanged checks that the key files in dir hold key as the
// current key and no previous one, as before a rotation that was refused.
func wantKeyFilesUnchanged(t *testing.T, dir string, key []byte) {
	t.Helper()
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil || !bytes.Equal(keys.Current, key) || keys.Previous != nil {
		t.Fatalf("a refused rotation changed the key files: %v", err)
	}
}

// openUntilCleanup opens the database at u with key, as a running
// process has it, and closes it when the test ends.
func openUntilCleanup(t *testing.T, u string, key []byte) *DB {
	t.Helper()
	db, err := OpenURL(context.Background(), u, Options{DataKey: key, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// staleProcess opens the database at u with key, as a process running on
// it, and has it lose the session that holds its open lock (a network
// failure, a restarted pooler): the open lock goes with it, so that a
// rotation does not see the process. It is closed when the test ends.
func staleProcess(t *testing.T, u string, key []byte) *DB {
	t.Helper()
	db := openUntilCleanup(t, u, key)
	db.eng.(*pgEngine).closeHolder()
	return db
}

// wantFenced checks that db is fenced (its Fenced channel closed) right
// after what happened.
func wantFenced(t *testing.T, db *DB, after string) {
	t.Helper()
	select {
	case <-db.Fenced():
	default:
		t.Fatalf("the store is not fenced after %s", after)
	}
}

// wantRotatedRefusal checks that err, what a process on the old key got
// for what, is ErrDataKeyRotated saying to start again with the new key.
func wantRotatedRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrDataKeyRotated) || !strings.Contains(err.Error(), "start this process again with the new key") {
		t.Fatalf("%s: %v, want ErrDataKeyRotated", what, err)
	}
}

func TestRotateDataKey(t *testing.T) {
	dir := t.TempDir()
	path, oldKey := newKeyedStore(t, dir)

	rot, err := RotateDataKey(context.Background(), "bolt:"+path, "", Options{})
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
	db := openChecked(t, "bolt:"+path, Options{DataKey: keys.Current})
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
	rot, err := RotateDataKey(context.Background(), "bolt:"+path, "", Options{})
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

	rot, err := RotateDataKey(context.Background(), "bolt:"+path, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rot.Resumed || rot.OldKeyID != KeyID(oldKey) || rot.NewKeyID != KeyID(newKey) {
		t.Fatalf("rotation = %+v", rot)
	}
	if _, err := os.Stat(filepath.Join(dir, DataKeyPreviousFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data-key.previous left behind: %v", err)
	}
	openChecked(t, "bolt:"+path, Options{DataKey: newKey})
}

func TestRotateDataKeyRefusesARunningNode(t *testing.T) {
	dir := t.TempDir()
	path, key := newKeyedStore(t, dir)
	db, err := Open(path, Options{DataKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = RotateDataKey(context.Background(), "bolt:"+path, "", Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("rotate while open: %v, want ErrLocked", err)
	}
	wantKeyFilesUnchanged(t, dir, key)
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
	if _, err := RotateDataKey(ctx, "bolt:"+path, "", Options{}); err != nil {
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

// newKeyedDatabase creates a PostgreSQL database sealed with a new
// dir/data-key, filled by fillStore, and returns its URL, the key file and
// the key.
func newKeyedDatabase(t *testing.T, dir string) (string, string, []byte) {
	t.Helper()
	u := pgtest.Database(t)
	keys, err := LoadDataKeys(dir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenURL(context.Background(), u, Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return u, filepath.Join(dir, DataKeyFile), keys.Current
}

// sealedWithKey counts the values of the database at u sealed with key.
func sealedWithKey(t *testing.T, u string, key []byte) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	id := keyID(key)
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM vultron_kv WHERE substring(value from 1 for $2) = $1`,
		append([]byte{sealTag}, id[:]...), 1+len(id)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRotateDataKeyOnPostgres rotates the data key of a database: refused
// while a process has it open, nothing changed; once every process is
// stopped, every value is resealed with the new key in one transaction,
// the old key opens nothing and is kept as the retired key; while the
// rotation holds the database, no process opens it.
func TestRotateDataKeyOnPostgres(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	u, keyFile, oldKey := newKeyedDatabase(t, dir)
	running, err := OpenURL(ctx, u, Options{DataKey: oldKey, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = RotateDataKey(ctx, u, keyFile, Options{NoSync: true})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "stop every process") {
		t.Fatalf("rotate while a process has the database open: %v, want ErrLocked saying to stop every process", err)
	}
	wantKeyFilesUnchanged(t, dir, oldKey)
	if err := running.Close(); err != nil {
		t.Fatal(err)
	}

	before := sealedWithKey(t, u, oldKey)
	rot, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Resumed || rot.OldKeyID != KeyID(oldKey) || rot.OldKeyID == rot.NewKeyID || rot.Resealed < 6 || rot.Resealed != before {
		t.Fatalf("rotation = %+v; %d values were sealed with the old key", rot, before)
	}
	if got, err := os.ReadFile(rot.Retired); err != nil || filepath.Dir(rot.Retired) != dir || len(got) == 0 {
		t.Fatalf("retired key %s: %v", rot.Retired, err)
	}
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil || KeyID(keys.Current) != rot.NewKeyID || keys.Previous != nil {
		t.Fatalf("key files after rotation: %v", err)
	}
	if n := sealedWithKey(t, u, oldKey); n != 0 {
		t.Errorf("%d values are still sealed with the old key", n)
	}
	if n := sealedWithKey(t, u, keys.Current); n != before {
		t.Errorf("%d values are sealed with the new key, want %d", n, before)
	}
	if _, err := OpenURL(ctx, u, Options{DataKey: oldKey, NoSync: true}); !errors.Is(err, ErrDataKey) {
		t.Fatalf("open with the old key: %v", err)
	}
	db, err := OpenURL(ctx, u, Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	checkStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// An exclusive opening (a rotation under way) keeps processes out.
	excl, err := OpenURL(ctx, u, Options{DataKey: keys.Current, NoSync: true, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenURL(ctx, u, Options{DataKey: keys.Current, NoSync: true})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "being rotated") {
		t.Errorf("open during a rotation: %v, want ErrLocked saying the key is being rotated", err)
	}
	if err := excl.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRotationFencesAProcessItDidNotSee: a process whose session holding
// the open lock was lost while the key was rotated writes nothing sealed
// with the old key afterwards: its next write is refused, the store says
// it is fenced, and the database reads whole with the new key.
func TestRotationFencesAProcessItDidNotSee(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	u, keyFile, oldKey := newKeyedDatabase(t, dir)
	stale := staleProcess(t, u, oldKey)
	// It no longer hears the rotation's announcement either (what a
	// partition does), so the write is what stops it.
	stale.eng.(*pgEngine).stop()
	<-stale.eng.(*pgEngine).closed
	if _, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stale.Fenced():
		t.Fatal("fenced before it wrote, although it heard nothing")
	default:
	}
	err := stale.Update(ctx, func(tx *Tx) error {
		c, err := tx.Case("case-2")
		if err != nil {
			return err
		}
		return c.Put([]byte("record"), []byte(marker))
	})
	wantRotatedRefusal(t, "a write after the rotation", err)
	wantFenced(t, stale, "a write refused for the rotation")
	if err := stale.Update(ctx, func(tx *Tx) error { return nil }); !errors.Is(err, ErrDataKeyRotated) {
		t.Errorf("a second write: %v, want ErrDataKeyRotated", err)
	}
	if n := sealedWithKey(t, u, oldKey); n != 0 {
		t.Errorf("%d values are sealed with the old key", n)
	}
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	openChecked(t, u, Options{DataKey: keys.Current, NoSync: true})
}

// TestRotateDataKeyRefusesADamagedStore: a store holding a value that
// does not open with its key (a flipped byte, a value moved under another
// key) is refused before the key files change, naming the value. Before,
// the new key was installed and the re-encryption failed on the value
// every time it was run again, and the node, which opens a store with
// data-key.previous beside its key by re-encrypting it, no longer
// started: a node that ran became one that did not.
func TestRotateDataKeyRefusesADamagedStore(t *testing.T) {
	dir := t.TempDir()
	path, key := newKeyedStore(t, dir)
	db, err := Open(path, Options{DataKey: key})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(context.Background(), func(tx *Tx) error {
		b := tx.tx.Bucket(bucketCases).Bucket([]byte("case-1"))
		return b.Put([]byte("moved"), cloneBytes(b.Get([]byte("record"))))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = RotateDataKey(context.Background(), "bolt:"+path, "", Options{})
	if !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), "cases/case-1") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("rotate a damaged store: %v, want ErrDataKey naming the value and saying nothing was changed", err)
	}
	wantKeyFilesUnchanged(t, dir, key)
	db, err = Open(path, Options{DataKey: key})
	if err != nil {
		t.Fatalf("the store no longer opens with its key after a refused rotation: %v", err)
	}
	db.Close()
}

// TestRotationHoldsTheDatabaseThroughout: from the check of the old key to
// the re-encryption, the rotation keeps the open lock alone, so a process
// that starts meanwhile (or one whose lost session reconnects) is refused
// rather than run on the old key and make the re-encryption fail half-way.
// Before, the rotation closed the database after its check and opened it
// again to re-encrypt: a process that opened it between the two had the
// rotation fail with "stop every process" after the new key was already in
// the key file, and itself kept sealing with the old key.
func TestRotationHoldsTheDatabaseThroughout(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	u, keyFile, oldKey := newKeyedDatabase(t, dir)
	var meanwhile error
	starts := func() {
		db, err := OpenURL(ctx, u, Options{DataKey: oldKey, NoSync: true})
		if err == nil {
			_ = db.Close()
		}
		meanwhile = err
	}
	rot, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true, keysSwapped: starts})
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if !errors.Is(meanwhile, ErrLocked) || !strings.Contains(meanwhile.Error(), "being rotated") {
		t.Fatalf("a process starting during the rotation: %v, want ErrLocked saying the key is being rotated", meanwhile)
	}
	if n := sealedWithKey(t, u, oldKey); n != 0 || rot.Resealed == 0 {
		t.Fatalf("%d values still sealed with the old key after %+v", n, rot)
	}
}

// TestARetiredKeyIsToldWhatToDo: a process started after a rotation with
// the key it replaced (a VULTRON_DATA_KEY not set again from the new key
// file) is refused in words that say the key was retired by a rotation
// and which key to give instead, on PostgreSQL and on a bbolt file; a key
// the store never had is still only "not the key given".
func TestARetiredKeyIsToldWhatToDo(t *testing.T) {
	ctx := context.Background()
	other := make([]byte, DataKeySize)
	other[0] = 1
	check := func(t *testing.T, u string, oldKey []byte) {
		t.Helper()
		_, err := OpenURL(ctx, u, Options{DataKey: oldKey, NoSync: true})
		var wrong *WrongKeyError
		if !errors.As(err, &wrong) || !wrong.Retired || !strings.Contains(err.Error(), "retired by rotate-key") || !strings.Contains(err.Error(), "the key that replaced it") {
			t.Fatalf("open with the retired key: %v, want it said to be retired, and what to give", err)
		}
		_, err = OpenURL(ctx, u, Options{DataKey: other, NoSync: true})
		if !errors.As(err, &wrong) || wrong.Retired || strings.Contains(err.Error(), "retired") {
			t.Fatalf("open with a key the store never had: %v", err)
		}
	}
	t.Run("postgres", func(t *testing.T) {
		dir := t.TempDir()
		u, keyFile, oldKey := newKeyedDatabase(t, dir)
		if _, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true}); err != nil {
			t.Fatal(err)
		}
		check(t, u, oldKey)
	})
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		path, oldKey := newKeyedStore(t, dir)
		if _, err := RotateDataKey(ctx, "bolt:"+path, "", Options{}); err != nil {
			t.Fatal(err)
		}
		check(t, "bolt:"+path, oldKey)
	})
}

// TestRotationFencesAProcessItDidNotSeeAtItsNextRead: a process whose open
// lock was lost while the key was rotated, and that only reads afterwards,
// is fenced at its first read of a value sealed with the new key, as at a
// write: the read says the key was rotated and to start again with the new
// key, and Fenced is closed (the node stops). Before, such a process kept
// serving, ready, and every read failed with "sealed with data key …,
// which is not the key given" until it happened to write.
func TestRotationFencesAProcessItDidNotSeeAtItsNextRead(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	u, keyFile, oldKey := newKeyedDatabase(t, dir)
	stale := staleProcess(t, u, oldKey)
	if _, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	err := stale.View(ctx, func(tx *ReadTx) error {
		c, err := tx.Case("case-1")
		if err != nil {
			return err
		}
		_ = c.Get([]byte("record"))
		return nil
	})
	wantRotatedRefusal(t, "a read after the rotation", err)
	wantFenced(t, stale, "a read of a value sealed with the new key")
}

// TestAnUnfinishedRotationIsToldWhatToDo: a process started with the new
// key alone (VULTRON_DATA_KEY set from the new key file) while a rotation
// that was interrupted has not re-encrypted the store is refused saying
// the rotation to that key did not finish and to run rotate-key again;
// once it has, the new key opens the store.
func TestAnUnfinishedRotationIsToldWhatToDo(t *testing.T) {
	dir := t.TempDir()
	u, keyFile, _ := newKeyedDatabase(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	// Interrupted once the key files changed.
	_, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true, keysSwapped: cancel})
	if err == nil {
		t.Fatal("the interrupted rotation finished")
	}
	keys, err := LoadDataKeys(dir, "", "", false)
	if err != nil || keys.Previous == nil {
		t.Fatalf("key files after the interruption: %v", err)
	}
	_, err = OpenURL(context.Background(), u, Options{DataKey: keys.Current, NoSync: true})
	var wrong *WrongKeyError
	if !errors.As(err, &wrong) || !strings.Contains(err.Error(), "did not finish") || !strings.Contains(err.Error(), "run vultron rotate-key again") {
		t.Fatalf("open with the new key of an unfinished rotation: %v, want it said the rotation did not finish and to run it again", err)
	}
	rot, err := RotateDataKey(context.Background(), u, keyFile, Options{NoSync: true})
	if err != nil || !rot.Resumed {
		t.Fatalf("finish the rotation: %+v, %v", rot, err)
	}
	db, err := OpenURL(context.Background(), u, Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	other := make([]byte, DataKeySize)
	if _, err = OpenURL(context.Background(), u, Options{DataKey: other, NoSync: true}); err == nil || strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("open with another key after the rotation finished: %v", err)
	}
}

// TestRotationFencesAProcessWhenItsConnectionsReturn: a process whose
// connections the database dropped (a failover) while the key was
// rotated is fenced as soon as it listens again, without waiting for a
// write of its own: its reads would fail on every value until then.
func TestRotationFencesAProcessWhenItsConnectionsReturn(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	u, keyFile, oldKey := newKeyedDatabase(t, dir)
	stale := openUntilCleanup(t, u, oldKey)
	admin := pgtest.Connect(t, u)
	pgtest.EndOtherSessions(t, admin)
	if _, err := RotateDataKey(ctx, u, keyFile, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stale.Fenced():
	case <-time.After(15 * time.Second):
		t.Fatal("the process whose connections were dropped during the rotation is not fenced 15 s after it")
	}
}

// TestClosedProcessReleasesTheOpenLockAtOnce closes a process's store and
// at once opens the database exclusively, as `systemctl stop` followed by
// rotate-key does, many times over: Close releases the open lock before
// it returns, rather than leave it to the server to notice the session's
// end, so the exclusive opening never finds it still held.
func TestClosedProcessReleasesTheOpenLockAtOnce(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	for i := range 40 {
		db, err := OpenURL(ctx, u, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		ex, err := OpenURL(ctx, u, Options{NoSync: true, Exclusive: true})
		if err != nil {
			t.Fatalf("open %d, exclusively, right after a process closed: %v", i, err)
		}
		if err := ex.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestARotationTheDatabaseCannotCheckIsNotDamage: a rotation whose check
// of the store the database does not answer (here a query waits for a
// table another session locks, past the lock_timeout of the store's
// sessions) changes nothing and says the check could not be made
// (ErrUnavailable), not that the store is damaged and is to be restored
// from a backup.
func TestARotationTheDatabaseCannotCheckIsNotDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	u, keyFile, key := newKeyedDatabase(t, dir)
	db, err := OpenURL(ctx, u+"&lock_timeout=100", Options{DataKey: key, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	admin := pgtest.Connect(t, u)
	holder, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `LOCK TABLE vultron_kv IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	_, err = rotateOpen(ctx, db, key, keyFile, filepath.Join(dir, "previous-key"), nil)
	if err == nil || errors.Is(err, ErrDamaged) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("rotation while the database cannot answer its check: %v; want ErrUnavailable saying nothing was changed, not ErrDamaged", err)
	}
	wantKeyFilesUnchanged(t, dir, key)
}
