package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestOpenOfALiveStoreSaysLocked: opening the store file of a process that
// is writing it (a second serve, vultron store copy, migrate) says that
// the store is in use, and never that it is damaged: the checks at open
// read the file only once they hold its lock, so they never read the pages
// of commits under way or pages freed and reused since (they did, and told
// the operator to restore a healthy store from a backup).
func TestOpenOfALiveStoreSaysLocked(t *testing.T) {
	db := openTestDB(t, Options{DataKey: testKey(2)})
	fillStore(t, db)
	mustPutActor(t, db, "coord")
	_, stop := writeWhile(t, db, "live")
	opens := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); opens++ {
		var err error
		if opens%2 == 0 {
			var e *boltEngine
			if e, err = openBoltReadOnly(db.path, time.Millisecond); err == nil {
				e.close()
			}
		} else {
			var e *boltEngine
			if e, err = openBolt(db.path, true, time.Millisecond); err == nil {
				e.close()
			}
		}
		if !errors.Is(err, ErrLocked) || errors.Is(err, ErrDamaged) {
			t.Errorf("open %d of a store being written: %v; want ErrLocked", opens, err)
			break
		}
	}
	stop()
	t.Logf("%d opens, each refused as locked", opens)
}

// TestABackupWhoseMetaBucketLoopsIsDamage: a backup whose meta bucket's
// root is a branch page whose child is itself passes the checks at open,
// which read only the root pages; CheckBackup and vultron store copy read
// the meta bucket through bbolt, whose search recursed until the stack
// overflowed and ended the process. They walk every page first now.
func TestABackupWhoseMetaBucketLoopsIsDamage(t *testing.T) {
	path, key, p := damagedStore(t, t.TempDir())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ord := binary.NativeEndian
	// The actors bucket's root page becomes a branch of one element whose
	// child is itself...
	hdr := make([]byte, 32)
	ord.PutUint64(hdr[0:], uint64(p.actorsRoot))
	ord.PutUint16(hdr[8:], boltBranchPage)
	ord.PutUint16(hdr[10:], 1)
	ord.PutUint64(hdr[24:], uint64(p.actorsRoot))
	if _, err := f.WriteAt(hdr, p.actorsRoot*p.pageSize); err != nil {
		t.Fatal(err)
	}
	// ...and the meta bucket's header in the root bucket's leaf names it
	// as the meta bucket's root.
	rootPage := readPageHeader(t, path, p.root, p.pageSize)
	found := false
	for i := range int(rootPage.count) {
		at := boltPageHeader + i*boltElemSize
		e := rootPage.data[at:]
		pos, ks := int(ord.Uint32(e[4:])), int(ord.Uint32(e[8:]))
		if bytes.Equal(rootPage.data[at+pos:at+pos+ks], bucketMeta) {
			b := ord.AppendUint64(nil, uint64(p.actorsRoot))
			if _, err := f.WriteAt(b, p.root*p.pageSize+int64(at+pos+ks)); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	f.Close()
	if !found {
		t.Fatal("no meta bucket header in the root bucket's page")
	}
	_, err = CheckBackup(context.Background(), path, key, nil)
	wantDamaged(t, "CheckBackup", err)
	_, err = SealedWith(context.Background(), "bolt:"+path)
	wantDamaged(t, "SealedWith", err)
}

// TestAFileOfHugePagesIsDamage: a crafted file whose meta pages say pages
// of 2 GiB and 2^32+3 of them (a few KiB on disk, sparse) is damage: the
// check of its size in bytes overflowed, and a page's span wrapped to a
// negative length that made the check panic.
func TestAFileOfHugePagesIsDamage(t *testing.T) {
	const ps = 1 << 31
	path := filepath.Join(t.TempDir(), "crafted.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	ord := binary.NativeEndian
	meta := func(txid uint64) []byte {
		b := make([]byte, boltPageHeader+64)
		ord.PutUint16(b[8:], 0x04) // a meta page
		m := b[boltPageHeader:]
		ord.PutUint32(m[0:], boltMagic)
		ord.PutUint32(m[4:], boltVersion)
		ord.PutUint32(m[8:], ps)
		ord.PutUint64(m[16:], 2)              // the root bucket at page 2
		ord.PutUint64(m[32:], boltNoFreelist) // no freelist
		ord.PutUint64(m[40:], 1<<32+3)        // the high-water mark
		ord.PutUint64(m[48:], txid)
		h := fnv.New64a()
		h.Write(m[:56])
		ord.PutUint64(m[56:], h.Sum64())
		return b
	}
	root := make([]byte, boltPageHeader)
	ord.PutUint64(root[0:], 2)
	ord.PutUint16(root[8:], boltLeafPage)
	ord.PutUint32(root[12:], 0xFFFFFFFF) // overflow pages
	for _, w := range []struct {
		b   []byte
		off int64
	}{{meta(2), 0}, {meta(3), ps}, {root, 2 * ps}} {
		if _, err := f.WriteAt(w.b, w.off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	wantDamaged(t, "checkBoltFile", noPanic(t, "checkBoltFile", func() error { return checkBoltFile(path) }))
	wantDamaged(t, "Open", noPanic(t, "Open", func() error {
		db, err := Open(path, Options{NoSync: true})
		if err == nil {
			db.Close()
		}
		return err
	}))
	_, err = SealedWith(context.Background(), "bolt:"+path)
	wantDamaged(t, "SealedWith", err)
}

// TestAStoreWithoutAFreelistIsWalkedAtOpen: a file whose meta pages say
// it keeps no freelist (as bbolt writes one with NoFreelistSync) makes
// bbolt's open for writing rebuild the freelist by reading every page, in
// a goroutine of its own where no recover reaches: a page id past the
// end of the file deep in a bucket ended the process. Such a file is
// walked at open, and its damage is a DamagedError.
func TestAStoreWithoutAFreelistIsWalkedAtOpen(t *testing.T) {
	path, key, p := treeStore(t, t.TempDir())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ord := binary.NativeEndian
	noFreelist := func() {
		for i := range int64(2) {
			b := make([]byte, boltPageHeader+64)
			if _, err := f.ReadAt(b, i*p.pageSize); err != nil {
				t.Fatal(err)
			}
			m := b[boltPageHeader:]
			ord.PutUint64(m[32:], boltNoFreelist)
			h := fnv.New64a()
			h.Write(m[:56])
			ord.PutUint64(m[56:], h.Sum64())
			if _, err := f.WriteAt(b, i*p.pageSize); err != nil {
				t.Fatal(err)
			}
		}
	}
	noFreelist()
	f.Sync()
	// Whole, it opens: bbolt rebuilds its freelist.
	db, err := Open(path, Options{DataKey: key, NoSync: true})
	if err != nil {
		t.Fatalf("a whole store without a freelist: %v", err)
	}
	db.Close()
	noFreelist() // the open wrote one
	// A child of the actors bucket's inner branch page far past the end.
	if _, err := f.WriteAt(ord.AppendUint64(nil, 1<<36), branchChild(p, p.inner, 0)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantDamaged(t, "Open", noPanic(t, "Open", func() error {
		db, err := Open(path, Options{DataKey: key, NoSync: true})
		if err == nil {
			db.Close()
		}
		return err
	}))
}

// TestCheckBackupOfDamagedSealedValues: a backup whose sealed value, or
// whose record of the data key, was altered is damage when checked with
// its own key, not a backup "sealed with another key" (which vultron backup
// keeps, naming the key to keep with it).
func TestCheckBackupOfDamagedSealedValues(t *testing.T) {
	t.Run("a sealed value", func(t *testing.T) {
		path, key, p := damagedStore(t, t.TempDir())
		flipEvery(t, path, p.activity, len(p.activity)/2)
		_, err := CheckBackup(context.Background(), path, key, nil)
		wantDamaged(t, "CheckBackup", err)
	})
	t.Run("the record of the data key", func(t *testing.T) {
		path, key, p := damagedStore(t, t.TempDir())
		flipEvery(t, path, append([]byte("data_key_id"), p.keyID[:]...), len("data_key_id")+3)
		_, err := CheckBackup(context.Background(), path, key, nil)
		wantDamaged(t, "CheckBackup", err)
		if err != nil && errors.Is(err, ErrDataKey) {
			t.Errorf("a damaged record of the data key is ErrDataKey too: %v", err)
		}
	})
}

// TestTheOpenCheckRunsOnceAFile: bbolt keeps the store's OpenFile and
// calls it again for a copy written with a WriteFlag (Tx.WriteTo) or
// Tx.CopyFile; the lock and the checks of the store's own open must not
// run then, or the copy waits for the lock the store holds and fails.
func TestTheOpenCheckRunsOnceAFile(t *testing.T) {
	e, err := openBolt(filepath.Join(t.TempDir(), "s.db"), true, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	err = e.db.View(func(tx *bolt.Tx) error {
		tx.WriteFlag = syscall.O_SYNC
		_, err := tx.WriteTo(io.Discard)
		return err
	})
	if err != nil {
		t.Errorf("a copy written with a WriteFlag: %v", err)
	}
}
