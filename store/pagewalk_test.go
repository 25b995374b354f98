package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// treeStore makes a sealed store file in dir (fillStore) with enough
// actors for the actors bucket to be a tree three pages deep (a branch
// page over branch pages over leaves), and a case whose record is larger
// than a page (a leaf with overflow pages); closes it and returns its
// path, its data key and where its pages are.
func treeStore(t *testing.T, dir string) (string, []byte, treePages) {
	t.Helper()
	path, key := newKeyedStore(t, dir)
	db, err := Open(path, Options{DataKey: key, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for start := 0; start < 6000; start += 1000 {
		err := db.Update(ctx, func(tx *Tx) error {
			for i := start; i < start+1000; i++ {
				name := fmt.Sprintf("actor%05d", i)
				if err := tx.PutLocalActor(LocalActor{
					Name: name, Type: "Organization",
					KeyID:        "https://node.example/actors/" + name + "#main-key",
					PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
					CreatedAt:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = db.Update(ctx, func(tx *Tx) error {
		c, err := tx.Case("case-large")
		if err != nil {
			return err
		}
		return c.Put([]byte("record"), []byte(`{"name":"`+strings.Repeat("x", 20000)+`"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, key, findTreePages(t, path)
}

// treePages is where treeStore's pages are in its file, by page id.
type treePages struct {
	pageSize  int64
	highWater int64 // the file's pages are below it
	root      int64 // the actors bucket's root page, a branch page
	inner     int64 // its first child, a branch page
	overflow  int64 // the large case's root page, a leaf with overflow
	free      int64 // the first page the freelist lists
}

// findTreePages reads, with bbolt and from the raw file, where the pages
// of treeStore's file at path are.
func findTreePages(t *testing.T, path string) treePages {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var tp treePages
	err = bdb.View(func(tx *bolt.Tx) error {
		tp.pageSize = int64(bdb.Info().PageSize)
		tp.highWater = tx.Size() / tp.pageSize
		tp.root = int64(tx.Bucket(bucketActors).Root())
		tp.overflow = int64(tx.Bucket(bucketCases).Bucket([]byte("case-large")).Root())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	root := readPageHeader(t, path, tp.root, tp.pageSize)
	if root.flags != boltBranchPage {
		t.Fatalf("the actors bucket's root page %d has type %#x, want a branch page", tp.root, root.flags)
	}
	tp.inner = int64(binary.NativeEndian.Uint64(root.data[boltPageHeader+8:]))
	if inner := readPageHeader(t, path, tp.inner, tp.pageSize); inner.flags != boltBranchPage || inner.count < 2 {
		t.Fatalf("page %d under the actors bucket's root has type %#x and %d elements, want a branch page over leaves", tp.inner, inner.flags, inner.count)
	}
	if p := readPageHeader(t, path, tp.overflow, tp.pageSize); p.flags != boltLeafPage || p.overflow == 0 {
		t.Fatalf("the large case's page %d has type %#x and %d overflow pages, want a leaf with overflow", tp.overflow, p.flags, p.overflow)
	}
	free := readPageHeader(t, path, int64(findMeta(t, path).freelist), tp.pageSize)
	if free.flags != boltFreelistPage || free.count == 0 || free.count == 0xFFFF {
		t.Fatalf("the freelist page %d has type %#x and count %d, want a freelist listing a few pages", free.id, free.flags, free.count)
	}
	tp.free = int64(binary.NativeEndian.Uint64(free.data[boltPageHeader:]))
	return tp
}

// findMeta returns the newest valid meta page of the bbolt file at path.
func findMeta(t *testing.T, path string) boltMetaPage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, ok0, ok1 := boltMetas(f)
	if !ok0 || !ok1 {
		t.Fatalf("the meta pages of %s are not both valid: %v %v", path, ok0, ok1)
	}
	return m
}

// readPageHeader reads the first page of page id of the bbolt file at
// path.
func readPageHeader(t *testing.T, path string, id, pageSize int64) boltPage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, pageSize)
	if _, err := f.ReadAt(buf, id*pageSize); err != nil {
		t.Fatal(err)
	}
	ord := binary.NativeEndian
	return boltPage{id: ord.Uint64(buf), flags: ord.Uint16(buf[8:]), count: ord.Uint16(buf[10:]), overflow: ord.Uint32(buf[12:]), data: buf}
}

// writeUint writes v, size bytes wide (4 or 8) in the machine's order, at
// off of the file at path.
func writeUint(t *testing.T, path string, off int64, size int, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	if size == 4 {
		binary.NativeEndian.PutUint32(b, uint32(v))
	} else {
		binary.NativeEndian.PutUint64(b, v)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// branchChild is the offset in the file of the child page id of element i
// of the branch page id.
func branchChild(p treePages, id int64, i int) int64 {
	return id*p.pageSize + boltPageHeader + int64(i)*boltElemSize + 8
}

// withinTime runs fn and fails the test if it has not returned within
// limit (fn is then left running: a walk that does not end).
func withinTime(t *testing.T, what string, limit time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s has not returned after %s", what, limit)
		return nil
	}
}

// TestAPageTreeThatDoesNotHoldIsDamage: a store file whose pages do not
// form a tree (a page header's overflow count made huge, a branch page
// that points to its own page or to an ancestor, a child page id past the
// end of the file or of a free page, two branch elements pointing to one
// page) is found
// damaged by CheckBackup (vultron backup's check) and DB.Check (vultron
// store copy's), within a short time, and the process goes on: a page
// walk of the store's own, bounded by the file, runs before bbolt's. A
// whole store passes. Before, bbolt's check ran out of memory on the
// overflow count (a fatal error, which no recover catches), and the walk
// of the buckets through bbolt's cursors descended a cycle without end.
func TestAPageTreeThatDoesNotHoldIsDamage(t *testing.T) {
	ctx := context.Background()
	healthy, key, pages := treeStore(t, t.TempDir())
	raw, err := os.ReadFile(healthy)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		// damage damages the file at path; nil leaves it whole.
		damage func(t *testing.T, path string, p treePages)
		// reason is in the error the walk returns.
		reason string
	}{
		{name: "a whole store"},
		{
			name: "overflow count made huge",
			damage: func(t *testing.T, path string, p treePages) {
				writeUint(t, path, p.overflow*p.pageSize+12, 4, 0xFFFFFFFF)
			},
			reason: fmt.Sprintf("page %d's overflow", pages.overflow),
		},
		{
			name: "branch element pointing to its own page",
			damage: func(t *testing.T, path string, p treePages) {
				writeUint(t, path, branchChild(p, p.inner, 0), 8, uint64(p.inner))
			},
			reason: fmt.Sprintf("page %d is reached twice", pages.inner),
		},
		{
			name: "branch element pointing to an ancestor",
			damage: func(t *testing.T, path string, p treePages) {
				writeUint(t, path, branchChild(p, p.inner, 1), 8, uint64(p.root))
			},
			reason: fmt.Sprintf("page %d is reached twice", pages.root),
		},
		{
			name: "child page id past the end",
			damage: func(t *testing.T, path string, p treePages) {
				writeUint(t, path, branchChild(p, p.inner, 1), 8, uint64(p.highWater+1000))
			},
			reason: fmt.Sprintf("page %d, past", pages.highWater+1000),
		},
		{
			name: "branch element pointing to a free page",
			damage: func(t *testing.T, path string, p treePages) {
				writeUint(t, path, branchChild(p, p.inner, 1), 8, uint64(p.free))
			},
			reason: fmt.Sprintf("page %d is both free", pages.free),
		},
		{
			name: "two branch elements pointing to one page",
			damage: func(t *testing.T, path string, p treePages) {
				first := readPageHeader(t, path, p.inner, p.pageSize)
				child := binary.NativeEndian.Uint64(first.data[boltPageHeader+8:])
				writeUint(t, path, branchChild(p, p.inner, 1), 8, child)
			},
			reason: "is reached twice",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(t, path, pages)
			}
			check := func(what string, err error) {
				t.Helper()
				if tt.damage == nil {
					if err != nil {
						t.Errorf("%s of a whole store: %v", what, err)
					}
					return
				}
				wantDamaged(t, what, err)
				var de *DamagedError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("%s: %v\nwant a DamagedError saying %q", what, err, tt.reason)
				}
			}

			err := withinTime(t, "CheckBackup", 20*time.Second, func() error {
				return noPanic(t, "CheckBackup", func() error {
					_, err := CheckBackup(ctx, path, key, nil)
					return err
				})
			})
			check("CheckBackup", err)

			err = withinTime(t, "DB.Check", 20*time.Second, func() error {
				return noPanic(t, "DB.Check", func() error {
					db, err := Open(path, Options{DataKey: key, NoSync: true})
					if err != nil {
						return err
					}
					defer db.Close()
					return db.Check(ctx)
				})
			})
			check("DB.Check", err)
		})
	}
}

// TestPageWalkWhileWriting: the page walk of a store that a node is
// writing (the walk reads the file, not bbolt's mapping) walks the pages of
// one transaction, which the transaction keeps from being written over, and
// finds nothing damaged however the writes fall between its reads.
func TestPageWalkWhileWriting(t *testing.T) {
	db := openTestDB(t, Options{DataKey: testKey(2)})
	fillStore(t, db)
	mustPutActor(t, db, "coord")
	eng := db.eng.(*boltEngine)
	writes, stop := writeWhile(t, db, "during-walk")
	walks := 0
	for deadline := time.Now().Add(10 * time.Second); writes.Load() < 500 && time.Now().Before(deadline); walks++ {
		if err := eng.walkPages(); err != nil {
			t.Error(err)
			break
		}
	}
	stop()
	t.Logf("%d walks during %d writes", walks, writes.Load())
	if writes.Load() < 500 {
		t.Errorf("%d writes during the walks, want 500", writes.Load())
	}
}

// BenchmarkCheckPages measures the page walk that the whole-file check
// runs first (walk: boltEngine.walkPages), beside bbolt's own check of the
// same file (bbolt: Tx.Check) and the whole-file check with both and the
// walk of the buckets through bbolt's cursors (check: boltEngine.check), for stores of 1,000 to 100,000 activities
// of about 1 KiB, every fourth of them deleted (activitiesStore): about 4,
// 40 and 300 MiB. The walk reads every page in use once.
func BenchmarkCheckPages(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		path := activitiesStore(b, n)
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		eng, err := openBoltReadOnly(path, DefaultLockTimeout)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("activities=%d/walk", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := eng.walkPages(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		})
		b.Run(fmt.Sprintf("activities=%d/check", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if errs := eng.check(context.Background()); len(errs) > 0 {
					b.Fatal(errors.Join(errs...))
				}
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		})
		b.Run(fmt.Sprintf("activities=%d/bbolt", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				err := eng.db.View(func(tx *bolt.Tx) error {
					for err := range tx.Check() {
						return err
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		})
		if err := eng.close(); err != nil {
			b.Fatal(err)
		}
	}
}

// writeWhile has two writers queue outbound activities of the actor coord
// in db, of sizes that vary, until stop is called (which waits for them);
// writes counts what they committed.
func writeWhile(t *testing.T, db *DB, prefix string) (writes *atomic.Int64, stop func()) {
	t.Helper()
	ctx := context.Background()
	done := make(chan struct{})
	writes = new(atomic.Int64)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, strings.Repeat("x", 100*(i%64))), Deliveries: []DeliveryTarget{{Recipient: inboxA}}}, nil); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				writes.Add(1)
			}
		})
	}
	return writes, func() { close(done); wg.Wait() }
}
