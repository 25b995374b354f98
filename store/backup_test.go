package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestBackupWhileWriting backs a sealed bbolt store up while writers keep
// appending audit records and deliveries: the copy opens with the store's
// data key, is consistent, holds what was there before the backup began,
// and its audit chain verifies, so it is one state of the store and not a
// file torn between commits; begin is told its size and key before any
// byte is written.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(path, Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillStore(t, db)
	mustPutActor(t, db, "coord")

	stop := make(chan struct{})
	var wg, writing sync.WaitGroup
	writing.Add(2)
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i == 1 {
					writing.Done() // the backup starts while both write
				}
				select {
				case <-stop:
					return
				default:
				}
				err := db.Update(ctx, func(tx *Tx) error {
					_, err := tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Decision: DecisionDone, Reason: fmt.Sprintf("writer %d record %d", w, i)})
					return err
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				id := fmt.Sprintf("during-backup-%d-%d", w, i)
				if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "out"), Deliveries: []DeliveryTarget{{Recipient: inboxA}}}, nil); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}

	writing.Wait()
	dest := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var told BackupInfo
	info, err := db.Backup(ctx, func(i BackupInfo) (io.Writer, error) {
		told = i
		return f, nil
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if told != info || info.DataKeyID != KeyID(testKey(2)) {
		t.Errorf("begin was told %+v, Backup returned %+v, want the key %s", told, info, KeyID(testKey(2)))
	}
	if fi, err := os.Stat(dest); err != nil || fi.Size() != info.Bytes {
		t.Fatalf("the copy is %v bytes (%v), Backup says %d", fi.Size(), err, info.Bytes)
	}

	c, err := Open(dest, Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer c.Close()
	// What was there before the backup began is in it, with what the
	// writers committed meanwhile.
	for _, id := range []string{"https://peer.example/activities/1", "during-backup-0-0", "during-backup-1-0"} {
		if a, err := c.Activity(ctx, id); err != nil || len(a.Body) == 0 {
			t.Errorf("activity %s in the copy: %v", id, err)
		}
	}
	if err := c.Check(ctx); err != nil {
		t.Error(err)
	}
	if v, err := c.VerifyAudit(ctx); err != nil || !v.OK {
		t.Errorf("audit chain of the copy: %+v, %v", v, err)
	}
}

// TestCheckBackup checks a backup as the command line does after taking
// one: with the key it is sealed with (or as the previous key), its pages,
// delivery index and audit chain; without a key, its pages; with another
// key it names the key needed; a backup cut short, or with a flipped byte
// in a record, is damaged; and the file is only read.
func TestCheckBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "vultron.db"), Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillStore(t, db)
	backup := func(t *testing.T) string {
		t.Helper()
		var buf bytes.Buffer
		if _, err := db.Backup(ctx, func(BackupInfo) (io.Writer, error) { return &buf, nil }); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "backup.db")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	good := backup(t)
	before, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		key, previous []byte
		opened        bool
	}{
		{"its key", testKey(2), nil, true},
		{"its key as the previous one", testKey(9), testKey(2), true},
		{"no key", nil, nil, false},
	} {
		bc, err := CheckBackup(ctx, good, tc.key, tc.previous)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if bc.DataKeyID != KeyID(testKey(2)) || bc.Opened != tc.opened || (tc.opened && (bc.AuditRecords == 0 || bc.AuditHead == "")) {
			t.Errorf("%s: %+v", tc.name, bc)
		}
	}
	if _, err := CheckBackup(ctx, good, testKey(7), nil); !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), KeyID(testKey(2))) {
		t.Errorf("another key: %v, want ErrDataKey naming %s", err, KeyID(testKey(2)))
	}
	if after, err := os.ReadFile(good); err != nil || !bytes.Equal(before, after) {
		t.Errorf("checking the backup changed it (%v)", err)
	}

	short := backup(t)
	if err := os.Truncate(short, int64(len(before))/2); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckBackup(ctx, short, testKey(2), nil); !errors.Is(err, ErrDamaged) {
		t.Errorf("a backup cut short: %v, want ErrDamaged", err)
	}

	// A flipped byte inside the sealed body of the report fillStore
	// stored: the value no longer opens, or the chain no longer verifies.
	flipped := backup(t)
	last := lastAuditValue(t, flipped)
	flipEvery(t, flipped, last, len(last)/2)
	if _, err := CheckBackup(ctx, flipped, testKey(2), nil); !errors.Is(err, ErrDamaged) {
		t.Errorf("a backup with a flipped byte in a record: %v, want ErrDamaged", err)
	}
}

// TestBackupRefusals: a begin that fails ends the backup before a byte is
// written, a closed store is refused, and a PostgreSQL store says that
// PostgreSQL's tools back it up.
func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{})
	var written bytes.Buffer
	refused := errors.New("no room for it")
	if _, err := db.Backup(ctx, func(BackupInfo) (io.Writer, error) { return &written, refused }); !errors.Is(err, refused) || written.Len() != 0 {
		t.Errorf("Backup with a begin that fails: %v, %d bytes written; want its error and nothing", err, written.Len())
	}

	closed, err := Open(filepath.Join(t.TempDir(), "closed.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := closed.Backup(ctx, func(BackupInfo) (io.Writer, error) { return &written, nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Backup of a closed store: %v, want ErrClosed", err)
	}

	pg := openPostgresTest(t, Options{})
	if _, err := pg.Backup(ctx, func(BackupInfo) (io.Writer, error) { return &written, nil }); !errors.Is(err, ErrNoFileBackup) {
		t.Errorf("Backup of a PostgreSQL store: %v, want ErrNoFileBackup", err)
	}
	if written.Len() != 0 {
		t.Errorf("%d bytes written by refused backups", written.Len())
	}
}

// lastAuditValue returns the last audit record's value as the bbolt file
// at path stores it.
func lastAuditValue(t *testing.T, path string) []byte {
	t.Helper()
	eng, err := openBoltReadOnly(path, DefaultLockTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.close()
	var stored []byte
	err = eng.view(context.Background(), func(tx kvTx) error {
		_, v := tx.Bucket(bucketAudit).Cursor().Last()
		stored = bytes.Clone(v)
		return nil
	})
	if err != nil || len(stored) < 16 {
		t.Fatalf("the last audit record: %d bytes, %v", len(stored), err)
	}
	return stored
}

// TestBackupStopsWhenItsContextEnds: a backup whose context ends while the
// copy is written (its client hung up, the node is stopping) stops
// writing and ends its read transaction, instead of copying the rest of
// the file first.
func TestBackupStopsWhenItsContextEnds(t *testing.T) {
	db := openTestDB(t, Options{})
	fillStore(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancellingWriter{cancel: cancel}
	info, err := db.Backup(ctx, func(BackupInfo) (io.Writer, error) { return w, nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Backup cancelled during the copy: %v (%+v), want context.Canceled", err, info)
	}
	if w.writes != 1 {
		t.Errorf("%d writes after the first cancelled the backup's context, want none", w.writes-1)
	}
}

// cancellingWriter cancels a context at its first write, and counts the
// writes.
type cancellingWriter struct {
	cancel func()
	writes int
}

func (w *cancellingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.cancel()
	return len(p), nil
}

// TestCheckBackupOfAFileThatPointsPastItsEnd: a backup whose bucket
// points at a page past the end of the file (a damaged byte) is damaged,
// whether the page is reached while the schema version is read or while
// the pages are checked, rather than a memory fault that ends the process
// (bbolt's own check reads pages in a goroutine of its own).
func TestCheckBackupOfAFileThatPointsPastItsEnd(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, Options{DataKey: testKey(2)})
	fillStore(t, db)
	var buf bytes.Buffer
	if _, err := db.Backup(ctx, func(BackupInfo) (io.Writer, error) { return &buf, nil }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bucket []byte
	}{
		{"the meta bucket", bucketMeta},
		{"the audit bucket", bucketAudit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "backup.db")
			if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			pointPastTheEnd(t, path, tc.bucket)
			if _, err := CheckBackup(ctx, path, testKey(2), nil); !errors.Is(err, ErrDamaged) {
				t.Errorf("CheckBackup: %v, want ErrDamaged", err)
			}
		})
	}
}

// pointPastTheEnd makes the top-level bucket name in the bbolt file at
// path start at a page far past the end of the file.
func pointPastTheEnd(t *testing.T, path string, name []byte) {
	t.Helper()
	eng, err := openBoltReadOnly(path, DefaultLockTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	err = eng.db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(name).Root())
		return nil
	})
	eng.close()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header := binary.LittleEndian.AppendUint64(bytes.Clone(name), root)
	past := binary.LittleEndian.AppendUint64(bytes.Clone(name), 1<<24)
	if !bytes.Contains(raw, header) {
		t.Fatalf("the header of bucket %s is not in the file", name)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(raw, header, past), 0o600); err != nil {
		t.Fatal(err)
	}
}
