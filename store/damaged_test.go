package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// damagedStore makes a sealed store file in dir holding every kind of
// sealed value (fillStore) and enough actors for the actors bucket to
// have pages of its own (a branch page over leaves), closes it, and
// returns its path, its data key and where its pages are.
func damagedStore(t *testing.T, dir string) (string, []byte, storePages) {
	t.Helper()
	path, key := newKeyedStore(t, dir)
	db, err := Open(path, Options{DataKey: key, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		mustPutActor(t, db, fmt.Sprintf("actor%03d", i))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	pages := findPages(t, path)
	pages.keyID = keyID(key)
	return path, key, pages
}

// storePages is where damagedStore's pages are in its file, by page id.
type storePages struct {
	pageSize   int64
	newestMeta int64 // 0 or 1
	root       int64 // the root bucket's page
	freelist   int64
	freeIDs    int   // pages the freelist lists
	actorsRoot int64 // the actors bucket's branch page
	actorsLeaf int64 // a leaf under it
	activity   []byte
	keyID      [keyIDSize]byte // of the data key
}

// findPages reads, with bbolt and from the raw file, where the pages of
// the store file at path are.
func findPages(t *testing.T, path string) storePages {
	t.Helper()
	m := findMeta(t, path)
	sp := storePages{pageSize: int64(m.pageSize), newestMeta: int64(m.txid % 2), root: int64(m.root), freelist: int64(m.freelist)}
	sp.freeIDs = int(readPageHeader(t, path, sp.freelist, sp.pageSize).count)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		actors := tx.Bucket(bucketActors)
		sp.actorsRoot = int64(actors.Root())
		_, sp.activity = tx.Bucket(bucketActivities).Cursor().First()
		sp.activity = bytes.Clone(sp.activity)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The last child of the actors bucket's branch page.
	branch := readPageHeader(t, path, sp.actorsRoot, sp.pageSize)
	if branch.flags != boltBranchPage || branch.count < 2 {
		t.Fatalf("the actors bucket's root page has type %#x and %d elements; want a branch page over leaves", branch.flags, branch.count)
	}
	last := int(branch.count) - 1
	sp.actorsLeaf = int64(binary.NativeEndian.Uint64(branch.data[boltPageHeader+last*boltElemSize+8:]))
	return sp
}

// flipByte inverts the byte at off of the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// flipEvery inverts a byte at off in every copy of value in the file at
// path: the live one and any a freed page still holds.
func flipEvery(t *testing.T, path string, value []byte, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for at := 0; ; {
		i := bytes.Index(data[at:], value)
		if i < 0 {
			break
		}
		flipByte(t, path, int64(at+i+off))
		at += i + len(value)
		n++
	}
	if n == 0 {
		t.Fatal("the value is not in the file")
	}
}

// noPanic runs fn and fails the test, rather than the test binary, when
// it panics.
func noPanic(t *testing.T, what string, fn func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", what, r)
		}
	}()
	return fn()
}

// wantDamaged fails the test unless err is ErrDamaged and says what to do.
func wantDamaged(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one saying the store is damaged", what)
		return
	}
	t.Logf("%s: %v", what, err)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "restore it from a backup") || !strings.Contains(err.Error(), "vultron store copy") {
		t.Errorf("%s: %v\nwant ErrDamaged saying to restore the store from a backup and check it with vultron store copy", what, err)
	}
}

// copyAndCheck copies the store at path as vultron store copy does and
// checks the copy as it does with the data key: consistency, sealed
// values and audit chain. (Before it copies, vultron store copy asks
// SealedWith which key the store is sealed with; the test asks it too.)
func copyAndCheck(ctx context.Context, path string, key []byte) error {
	to := filepath.Join(filepath.Dir(path), "check.db")
	defer os.Remove(to)
	if _, err := Copy(ctx, "bolt:"+path, "bolt:"+to); err != nil {
		return err
	}
	db, err := Open(to, Options{DataKey: key, NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Check(ctx); err != nil {
		return err
	}
	v, err := db.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if !v.OK {
		return fmt.Errorf("audit chain breaks at %d: %s", v.BrokenSeq, v.Reason)
	}
	return nil
}

// TestAFlippedByteIsReportedAsDamage: a byte flipped in a store file (a
// failing disk, a bad copy) is an error that says the store is damaged and
// what to do, wrapping ErrDamaged, never a panic and never a store opened
// as if whole, both when the node opens it and when vultron store copy
// copies and checks it. Where the flipped byte is in something every open
// reads (a meta page, the freelist, the root bucket's page, a top-level
// bucket's root page), the open fails. Where it is in a page or value that
// no open reads (a leaf deep in a bucket, a sealed value), finding it at
// open would mean reading the whole file at every start: the open
// succeeds, and the first read of it fails instead; the check of a copy
// finds it. Before, bbolt panicked on a page of the wrong type (the node
// stopped with a goroutine dump), opened a store with a damaged newest
// meta page at the transaction before it, and a sealed value that did
// not open was a data key error that did not say the store was damaged.
func TestAFlippedByteIsReportedAsDamage(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		// flip damages the file at path.
		flip func(t *testing.T, path string, p storePages)
		// read, when set, is the first read of what flip damaged, in a
		// store that opens: the damage is not in what an open reads.
		read func(db *DB) error
	}{
		{name: "newest meta page", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, p.newestMeta*p.pageSize+boltPageHeader+40) // its high-water mark
		}},
		{name: "older meta page", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, (1-p.newestMeta)*p.pageSize+boltPageHeader+16) // its root bucket's page
		}},
		{name: "root bucket page type", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, p.root*p.pageSize+8)
		}},
		{name: "root bucket element", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, p.root*p.pageSize+boltPageHeader+7) // the high byte of the first key's position
		}},
		{name: "actors bucket root page type", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, p.actorsRoot*p.pageSize+8)
		}},
		{name: "actors bucket branch child", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, p.actorsRoot*p.pageSize+boltPageHeader+8+6) // a high byte of its first child's page id
		}},
		{name: "freelist page type", flip: func(t *testing.T, path string, p storePages) {
			flipByte(t, path, p.freelist*p.pageSize+8)
		}},
		{name: "freelist page id", flip: func(t *testing.T, path string, p storePages) {
			if p.freeIDs == 0 {
				t.Fatal("the freelist is empty, want free pages to damage")
			}
			// A high byte of the first free page's id: a page past the
			// end. An id between the freelist's first page and its last
			// id is not read at open (that would cost a pass over a list
			// that grows with the file), and a flipped low byte that keeps
			// the list in order names another page, which nothing short
			// of walking the file tells from a free one.
			flipByte(t, path, p.freelist*p.pageSize+boltPageHeader+5)
		}},
		{name: "recorded data key id", flip: func(t *testing.T, path string, p storePages) {
			// The meta bucket's record of the key the store is sealed
			// with: without a look at the values, a node given the right
			// key would be told it is the wrong one.
			flipEvery(t, path, append([]byte("data_key_id"), p.keyID[:]...), len("data_key_id")+3)
		}},
		{
			name: "actors leaf page type",
			flip: func(t *testing.T, path string, p storePages) {
				flipByte(t, path, p.actorsLeaf*p.pageSize+8)
			},
			read: func(db *DB) error {
				_, err := db.LocalActors(ctx)
				return err
			},
		},
		{
			name: "sealed activity value",
			flip: func(t *testing.T, path string, p storePages) {
				flipEvery(t, path, p.activity, len(p.activity)/2) // in its ciphertext
			},
			read: func(db *DB) error {
				_, err := db.Activity(ctx, "https://node.example/activities/out-0")
				if err == nil {
					_, err = db.Activity(ctx, "https://node.example/activities/out-1")
				}
				if err == nil {
					_, err = db.Activity(ctx, "https://peer.example/activities/1")
				}
				return err
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, key, pages := damagedStore(t, t.TempDir())
			tt.flip(t, path, pages)

			err := noPanic(t, "Open", func() error {
				db, err := Open(path, Options{DataKey: key, NoSync: true})
				if err != nil {
					return err
				}
				defer db.Close()
				if tt.read == nil {
					return nil
				}
				return noPanic(t, "the first read", func() error { return tt.read(db) })
			})
			wantDamaged(t, "open and read", err)
			if tt.read == nil && err != nil && !strings.HasPrefix(err.Error(), "store: open "+path) {
				t.Errorf("open: %v, want the open to fail", err)
			}

			err = noPanic(t, "OpenURL", func() error {
				db, err := OpenURL(ctx, "bolt:"+path, Options{DataKey: key, NoSync: true})
				if err == nil {
					db.Close()
				}
				return err
			})
			if tt.read == nil {
				wantDamaged(t, "OpenURL", err)
			} else if err != nil {
				t.Errorf("OpenURL: %v, want the damage found at its first read, not at open", err)
			}

			if tt.read == nil {
				// What vultron store copy --data asks first.
				err = noPanic(t, "SealedWith", func() error {
					_, err := SealedWith(ctx, "bolt:"+path)
					return err
				})
				wantDamaged(t, "SealedWith", err)
			}

			err = noPanic(t, "store copy", func() error { return copyAndCheck(ctx, path, key) })
			wantDamaged(t, "store copy and its check", err)
		})
	}
}

// TestRotationAndCompactionRefuseADamagedPage: rotate-key refuses a
// store with a damaged page that no open reads (a leaf deep in the actors
// bucket) before it changes the key files, and CompactFile, which walks
// every page, refuses it as damaged rather than panic. Before, the
// rotation checked only that the sealed values open, installed the new
// key, and then its compaction panicked on the page.
func TestRotationAndCompactionRefuseADamagedPage(t *testing.T) {
	dir := t.TempDir()
	path, key, pages := damagedStore(t, dir)
	flipByte(t, path, pages.actorsLeaf*pages.pageSize+8)

	err := noPanic(t, "CompactFile", func() error { return CompactFile(path, 0) })
	wantDamaged(t, "CompactFile", err)
	if _, statErr := os.Stat(path + ".compact"); !os.IsNotExist(statErr) {
		t.Errorf("a failed compaction left %s.compact: %v", path, statErr)
	}

	err = noPanic(t, "RotateDataKey", func() error {
		_, err := RotateDataKey(context.Background(), "bolt:"+path, "", Options{NoSync: true})
		return err
	})
	wantDamaged(t, "RotateDataKey", err)
	if err != nil && !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("RotateDataKey: %v, want it to say nothing was changed", err)
	}
	wantKeyFilesUnchanged(t, dir, key)
}

// TestAPanicOfTheStoresOwnIsNotDamage: the engine turns only bbolt's
// panics (and memory faults) into ErrDamaged; a panic raised by the
// function a transaction runs is a programming error, and goes on rather
// than pass for a damaged file.
func TestAPanicOfTheStoresOwnIsNotDamage(t *testing.T) {
	db := openTestDB(t, Options{})
	for _, tt := range []struct {
		name string
		run  func(fn func(kvTx) error) error
	}{
		{"view", func(fn func(kvTx) error) error { return db.eng.view(context.Background(), fn) }},
		{"update", func(fn func(kvTx) error) error { return db.eng.update(context.Background(), fn) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			var err error
			func() {
				defer func() { got = recover() }()
				err = tt.run(func(kvTx) error { panic("a bug of the store's own") })
			}()
			if got != "a bug of the store's own" {
				t.Errorf("%s: recovered %v, error %v; want the panic to go on", tt.name, got, err)
			}
		})
	}
	if _, err := db.LocalActors(context.Background()); err != nil {
		t.Errorf("a read after the panics: %v", err)
	}
}

// BenchmarkOpenCheck measures what checkBoltFile adds to every open of a
// bbolt store (check), beside a whole Open and Close of the same file
// (open), for stores of 1,000 to 100,000 activities of about 1 KiB, of
// which every fourth was then deleted, so that the freelist lists pages.
// The check reads the meta pages, the freelist, the root bucket's page and
// the top-level buckets' root pages: its cost must not grow with the data.
func BenchmarkOpenCheck(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		path := activitiesStore(b, n)
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		free := freePages(b, path)
		b.Run(fmt.Sprintf("activities=%d/check", n), func(b *testing.B) {
			for b.Loop() {
				if err := checkBoltFile(path); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
			b.ReportMetric(float64(free), "free-pages")
		})
		b.Run(fmt.Sprintf("activities=%d/open", n), func(b *testing.B) {
			for b.Loop() {
				db, err := Open(path, Options{NoSync: true})
				if err != nil {
					b.Fatal(err)
				}
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// activitiesStore makes, in a temporary directory, a bbolt store of n
// activities of about 1 KiB, of which every fourth was then deleted, so
// that the freelist lists pages; it returns its path.
func activitiesStore(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "vultron.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 1000)
	for start := 0; start < n; start += 5000 {
		err := db.Update(ctx, func(tx *Tx) error {
			acts := tx.tx.Bucket(bucketActivities)
			for i := start; i < min(start+5000, n); i++ {
				if err := acts.Put([]byte(fmt.Sprintf("https://node.example/activities/%08d", i)), body); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	err = db.Update(ctx, func(tx *Tx) error {
		acts := tx.tx.Bucket(bucketActivities)
		for i := 0; i < n; i += 4 {
			if err := acts.Delete([]byte(fmt.Sprintf("https://node.example/activities/%08d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// freePages returns how many pages the freelist of the bbolt file at path
// lists.
func freePages(b *testing.B, path string) int {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	m, _, _ := boltMetas(f)
	c := &boltChecker{r: f, meta: m}
	p, err := c.page(m.freelist, "the freelist", int64(m.pageSize))
	if err != nil {
		b.Fatal(err)
	}
	if p.count == 0xFFFF {
		return int(binary.NativeEndian.Uint64(p.data[boltPageHeader:]))
	}
	return int(p.count)
}

// checkBoltFile runs the checks of an open (checkBoltOpenFile) on the
// bbolt file at path, without its lock, for the tests that damage a file
// and look at what the checks say. A missing file passes.
func checkBoltFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // bbolt creates it, or says why it cannot
	}
	defer f.Close()
	return checkBoltOpenFile(f, path, false)
}
