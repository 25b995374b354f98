package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

const marker = "MARKER-7f3c9e-SQLI-IN-LOGIN"

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, DataKeySize) }

func TestSealOpenBindsBucketAndKey(t *testing.T) {
	s, err := newSealer(testKey(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.seal("cases/c1/notes", []byte("k1"), []byte(marker))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(v, []byte(marker)) {
		t.Fatal("sealed value contains the plaintext")
	}
	w, _ := s.seal("cases/c1/notes", []byte("k1"), []byte(marker))
	if bytes.Equal(v, w) {
		t.Fatal("two seals of the same value are equal: nonce not random")
	}
	got, err := s.open("cases/c1/notes", []byte("k1"), v)
	if err != nil || string(got) != marker {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.open("cases/c1/notes", []byte("k2"), v); !errors.Is(err, ErrDataKey) {
		t.Fatalf("value moved to another key: err = %v, want ErrDataKey", err)
	}
	if _, err := s.open("cases/c2/notes", []byte("k1"), v); !errors.Is(err, ErrDataKey) {
		t.Fatalf("value moved to another bucket: err = %v, want ErrDataKey", err)
	}
	other, _ := newSealer(testKey(2), nil)
	_, err = other.open("cases/c1/notes", []byte("k1"), v)
	if !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), "sealed with data key "+KeyID(testKey(1))+", which is not the key given") {
		t.Fatalf("open with another key: %v", err)
	}
}

// fillStore writes the marker into every kind of sealed value: an inbound
// activity, an outbound activity and its delivery, a dead letter, and case
// bucket values at two depths.
func fillStore(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	mustPutActor(t, db, "vendor")
	in := inbound("https://peer.example/activities/1", "vendor", marker+" report content")
	if _, err := db.AcceptInbound(ctx, in, func(tx *Tx) error {
		c, err := tx.Case("case-1")
		if err != nil {
			return err
		}
		if err := c.Put([]byte("record"), []byte(`{"name":"`+marker+` report name"}`)); err != nil {
			return err
		}
		notes, err := c.Bucket("notes")
		if err != nil {
			return err
		}
		_, err = notes.Append([]byte("note: " + marker))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		id := fmt.Sprintf("https://node.example/activities/out-%d", i)
		if err := db.EnqueueOutbound(ctx, Outbound{
			ID: id, Actor: "vendor", Body: activityBody(id, marker+" outbound"),
			Deliveries: []DeliveryTarget{{Recipient: "https://peer.example/actors/finder"}},
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	due, _, err := db.PendingDeliveries(ctx, 0, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("pending = %d, %v", len(due), err)
	}
	if err := db.DeadLetter(ctx, due[0].ID, "gone"); err != nil {
		t.Fatal(err)
	}
	// A user's record in the accounts bucket, as package accounts writes
	// them, nested one level like a case's.
	if err := db.Update(ctx, func(tx *Tx) error {
		users, err := tx.Accounts("users")
		if err != nil {
			return err
		}
		return users.Put([]byte("u1"), []byte(`{"name":"`+marker+` analyst"}`))
	}); err != nil {
		t.Fatal(err)
	}
}

// checkStore asserts every value written by fillStore reads back.
func checkStore(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	a, err := db.Activity(ctx, "https://peer.example/activities/1")
	if err != nil || !bytes.Contains(a.Body, []byte(marker)) {
		t.Fatalf("inbound activity: %v", err)
	}
	a, err = db.Activity(ctx, "https://node.example/activities/out-1")
	if err != nil || !bytes.Contains(a.Body, []byte(marker)) {
		t.Fatalf("outbound activity: %v", err)
	}
	pend, _, err := db.PendingDeliveries(ctx, 0, 10)
	if err != nil || len(pend) != 1 || pend[0].Recipient != "https://peer.example/actors/finder" {
		t.Fatalf("pending deliveries = %d, %v", len(pend), err)
	}
	dead, _, err := db.DeadLetters(ctx, 0, 10)
	if err != nil || len(dead) != 1 || dead[0].LastError == "" {
		t.Fatalf("dead letters = %d, %v", len(dead), err)
	}
	err = db.View(ctx, func(tx *ReadTx) error {
		c, err := tx.Case("case-1")
		if err != nil {
			return err
		}
		if v := c.Get([]byte("record")); !bytes.Contains(v, []byte(marker)) {
			return fmt.Errorf("case record = %q", v)
		}
		notes, err := c.Bucket("notes")
		if err != nil {
			return err
		}
		n := 0
		err = notes.ForEach(func(k, v []byte) error {
			n++
			if !bytes.Contains(v, []byte(marker)) {
				return fmt.Errorf("note = %q", v)
			}
			return nil
		})
		if n != 1 {
			return fmt.Errorf("%d notes, want 1", n)
		}
		if err != nil {
			return err
		}
		users, err := tx.Accounts("users")
		if err != nil {
			return err
		}
		if v := users.Get([]byte("u1")); !bytes.Contains(v, []byte(marker)) {
			return fmt.Errorf("user record = %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rawContains(t *testing.T, path, s string) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(raw, []byte(s))
}

func TestEncryptedStoreKeepsNoPlaintext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(path, Options{DataKey: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, db)
	checkStore(t, db)
	if rawContains(t, path, marker) {
		t.Fatal("raw file holds the marker while open")
	}
	// Delivery records hold no report text, but are sealed too.
	err = db.View(context.Background(), func(tx *ReadTx) error {
		for _, name := range [][]byte{bucketActivities, bucketDeliveries, bucketDeadLetters} {
			n := 0
			err := tx.tx.Bucket(name).ForEach(func(k, v []byte) error {
				n++
				if !isSealed(v) {
					return fmt.Errorf("%s %x is not sealed", name, k)
				}
				return nil
			})
			if err != nil || n == 0 {
				return fmt.Errorf("%s: %d values, %v", name, n, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if rawContains(t, path, marker) {
		t.Fatal("raw file holds the marker after close")
	}
	if err := CompactFile(path, 0); err != nil {
		t.Fatal(err)
	}
	if rawContains(t, path, marker) {
		t.Fatal("raw file holds the marker after compaction")
	}

	// Without a key, or with another one, the file is refused.
	if _, err := Open(path, Options{}); !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), "encrypted with data key "+KeyID(testKey(1))) {
		t.Fatalf("open without key: %v", err)
	}
	_, err = Open(path, Options{DataKey: testKey(2)})
	if !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), "sealed with data key "+KeyID(testKey(1))+", not the key given") {
		t.Fatalf("open with another key: %v", err)
	}

	db, err = Open(path, Options{DataKey: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStore(t, db)
}

func TestTamperedValueFailsTheRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		db, err := OpenURL(context.Background(), path, Options{DataKey: testKey(1), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		fillStore(t, db)
		ctx := context.Background()
		// Move the sealed record of case-1 under another key of the same bucket.
		err = db.Update(ctx, func(tx *Tx) error {
			b := tx.tx.Bucket(bucketCases).Bucket([]byte("case-1"))
			return b.Put([]byte("moved"), cloneBytes(b.Get([]byte("record"))))
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(ctx, func(tx *ReadTx) error {
			c, err := tx.Case("case-1")
			if err != nil {
				return err
			}
			if v := c.Get([]byte("moved")); v != nil {
				t.Errorf("moved value read as %q", v)
			}
			return nil
		})
		if !errors.Is(err, ErrDataKey) {
			t.Fatalf("View over a moved value: err = %v, want ErrDataKey", err)
		}
		// A write transaction that reads it fails too, and writes nothing.
		err = db.Update(ctx, func(tx *Tx) error {
			c, _ := tx.Case("case-1")
			_ = c.Get([]byte("moved"))
			return c.Put([]byte("after"), []byte("x"))
		})
		if !errors.Is(err, ErrDataKey) {
			t.Fatalf("Update over a moved value: err = %v, want ErrDataKey", err)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			c, _ := tx.Case("case-1")
			if c.Get([]byte("after")) != nil {
				t.Error("write of a failed transaction committed")
			}
			return nil
		})
	})
}

func TestUnencryptedFileIsEncryptedOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !rawContains(t, path, marker) {
		t.Fatal("an unencrypted file should hold the marker in the clear")
	}
	db, err = Open(path, Options{DataKey: testKey(3)})
	if err != nil {
		t.Fatal(err)
	}
	if db.resealed < 6 {
		t.Errorf("sealed %d values on open, want at least 6", db.resealed)
	}
	checkStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Freed pages may keep the old plaintext until the file is compacted
	// (rotate-key compacts).
	if err := CompactFile(path, 0); err != nil {
		t.Fatal(err)
	}
	if rawContains(t, path, marker) {
		t.Fatal("raw file holds the marker after migration and compaction")
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrDataKey) {
		t.Fatalf("migrated file opened without a key: %v", err)
	}
	db, err = Open(path, Options{DataKey: testKey(3)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStore(t, db)
}

func TestLoadDataKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDataKeys(dir, "", "", false); err == nil {
		t.Fatal("missing key file without create: no error")
	}
	k, err := LoadDataKeys(dir, "", "", true)
	if err != nil || len(k.Current) != DataKeySize || k.FromEnv || k.Previous != nil {
		t.Fatalf("create: %+v, %v", k, err)
	}
	fi, err := os.Stat(filepath.Join(dir, DataKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v, %v", fi.Mode(), err)
	}
	again, err := LoadDataKeys(dir, "", "", true)
	if err != nil || !bytes.Equal(again.Current, k.Current) {
		t.Fatalf("second load returned another key: %v", err)
	}
	env := base64.StdEncoding.EncodeToString(testKey(9))
	e, err := LoadDataKeys(dir, "", env, true)
	if err != nil || !bytes.Equal(e.Current, testKey(9)) || !e.FromEnv {
		t.Fatalf("environment key did not win: %v", err)
	}
	if _, err := LoadDataKeys(dir, "", "not base64!", true); !errors.Is(err, ErrDataKey) {
		t.Fatalf("bad environment key: %v", err)
	}
	if _, err := LoadDataKeys(dir, "", base64.StdEncoding.EncodeToString([]byte("short")), true); !errors.Is(err, ErrDataKey) {
		t.Fatalf("short environment key: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, DataKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDataKeys(dir, "", "", true)
	if !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("key file with mode 0644: %v", err)
	}
}

// BenchmarkAcceptInboundSealed is BenchmarkAcceptInbound with a data key, so
// the cost of sealing shows beside it.
func BenchmarkAcceptInboundSealed(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "vultron.db"), Options{DataKey: testKey(1)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			mustPutActor(b, db, "coord")
			filler := strings.Repeat("x", 900)
			sender := "https://peer.example/actors/vendor"
			elapsed := concurrently(b, writers, func(i int64) error {
				id := fmt.Sprintf("https://peer.example/activities/%d", i)
				_, err := db.AcceptInbound(ctx, Inbound{
					ID: id, Recipient: "coord", Sender: sender, KeyID: sender + "#main-key",
					Body: activityBody(id, filler), Semantic: "RmSubmitReport",
				}, nil)
				return err
			})
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
		})
	}
}

// BenchmarkSeal measures sealing and opening one 1 KiB value, the CPU cost
// encryption adds to each stored activity.
func BenchmarkSeal(b *testing.B) {
	s, err := newSealer(testKey(1), nil)
	if err != nil {
		b.Fatal(err)
	}
	plain := bytes.Repeat([]byte("x"), 1024)
	key := []byte("https://peer.example/activities/1")
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		v, err := s.seal("activities", key, plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.open("activities", key, v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenLogsTheDataKeyID checks that a store sealed with a data key says
// at open which key it is (its id, never the key): an operator records the
// id with the key, and matches a backup with it.
func TestOpenLogsTheDataKeyID(t *testing.T) {
	var logged bytes.Buffer
	key := testKey(1)
	db, err := Open(filepath.Join(t.TempDir(), "vultron.db"), Options{NoSync: true, DataKey: key, Logger: zerolog.New(&logged)})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var opened string
	for _, line := range strings.Split(logged.String(), "\n") {
		if strings.Contains(line, `"message":"store opened"`) {
			opened = line
		}
	}
	if !strings.Contains(opened, `"data_key_id":"`+KeyID(key)+`"`) || strings.Contains(logged.String(), base64.StdEncoding.EncodeToString(key)) {
		t.Errorf("the store's opening logged %q; want the data key's id and never the key", opened)
	}
}

// TestWrongDataKeySaysTheStore: a store opened with another data key than
// the one it is sealed with is refused naming both keys, as a store, which
// on PostgreSQL is no file.
func TestWrongDataKeySaysTheStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		u := be.newURL(t)
		db, err := OpenURL(ctx, u, Options{DataKey: testKey(1), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		mustPutActor(t, db, "vendor")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err = OpenURL(ctx, u, Options{DataKey: testKey(2), NoSync: true})
		if err == nil {
			db.Close()
			t.Fatal("opened with another data key")
		}
		want := "the store is sealed with data key " + KeyID(testKey(1)) + ", not the key given (" + KeyID(testKey(2)) + "): give the key it is sealed with"
		if !errors.Is(err, ErrDataKey) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v; want ErrDataKey saying %q", err, want)
		}
	})
}
