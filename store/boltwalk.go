package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// What the whole-file check of a bbolt store (boltEngine.check) reads
// first, before it lets bbolt walk the file. bbolt trusts the page ids and
// page headers it reads: a branch page that points back to itself or to an
// ancestor makes its cursors descend without end, and a page header with
// a huge overflow count makes its check (Tx.Check) count billions of
// pages into a map until the process runs out of memory. Neither is a
// panic that a recover catches: the process dies, or hangs. walkBoltPages
// visits every page reachable from the meta page of a read transaction,
// reading the file itself (ReadAt into one reused buffer, not bbolt's
// mapping: no memory fault), and checks before it reads a page that its
// id and its overflow pages lie within the file, and before it follows a
// page id that the page was not reached before: each page of a bbolt file
// has one parent, so a page reached twice (a cycle, two parents) is
// damage, and the walk reads each page once. Its memory is a bit per page
// of the file (twice: reached, free), the page being read with its
// overflow, and the pages waiting to be read.

// boltWalkDepth bounds how many pages deep, from the meta page, the walk
// goes: trees within trees (nested buckets) of the store's few levels of
// buckets, each a few pages deep, stay far below it.
const boltWalkDepth = 256

// errBoltWalkFound ends a walk that looked for the first reach of a page
// (boltWalker.target) when it has found it.
var errBoltWalkFound = errors.New("the page looked for is reached")

// boltPageSet is a set of page ids, a bit each.
type boltPageSet []uint64

// newBoltPageSet returns an empty set of the page ids below n.
func newBoltPageSet(n uint64) boltPageSet { return make(boltPageSet, (n+63)/64) }

// has reports whether the page id is in the set.
func (s boltPageSet) has(id uint64) bool { return s[id/64]&(1<<(id%64)) != 0 }

// add puts the page id in the set.
func (s boltPageSet) add(id uint64) { s[id/64] |= 1 << (id % 64) }

// boltReach is where the walk came to a page from.
type boltReach struct {
	from uint64 // the page that points to it: 0 or 1, a meta page
	elem int    // the element of from that points to it; -1: it is one of from's overflow pages
}

// String names the reach in a DamagedError.
func (r boltReach) String() string {
	switch {
	case r.from < 2:
		return fmt.Sprintf("meta page %d", r.from)
	case r.elem < 0:
		return fmt.Sprintf("page %d, as one of its overflow pages", r.from)
	}
	return fmt.Sprintf("page %d (element %d)", r.from, r.elem)
}

// boltWalkRef is a page the walk has reached and not read yet.
type boltWalkRef struct {
	id    uint64
	reach boltReach
	depth int
}

// boltWalker walks the pages of one bbolt file from one of its meta pages.
type boltWalker struct {
	r        io.ReaderAt
	path     string
	meta     boltMetaPage
	metaPage uint64      // which meta page: 0 or 1
	reached  boltPageSet // pages the walk reached
	free     boltPageSet // pages the freelist lists
	buf      []byte      // the page being read, with its overflow
	stack    []boltWalkRef

	// target, when not 0, is a page reached twice: the walk stops at its
	// first reach, which it keeps in first.
	target uint64
	first  boltReach
}

// walkBoltPages walks the bbolt file at path from the meta page of a read
// transaction, tx (what the transaction says of it: its page size, root
// bucket's page, high-water mark and id): the freelist and every page of
// every bucket. It returns a DamagedError saying what does not hold. The
// freelist is the one the file's meta page of transaction tx.txid names;
// when two commits since the transaction began have written over that meta
// page, free pages are not checked, and the pages in use still are.
func walkBoltPages(path string, tx boltMetaPage) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("walk the pages of %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("walk the pages of %s: %w", path, err)
	}
	return walkBoltReader(f, fi.Size(), path, tx)
}

// walkBoltReader is walkBoltPages of the file f, size bytes long.
func walkBoltReader(f io.ReaderAt, size int64, path string, tx boltMetaPage) error {
	w := &boltWalker{r: f, path: path, meta: tx, metaPage: tx.txid % 2}
	for i := range int64(2) {
		if m, ok := boltMeta(f, i*int64(tx.pageSize)); ok && m.txid == tx.txid && m.pageSize == tx.pageSize {
			w.meta, w.metaPage = m, uint64(i)
		}
	}
	ps := int64(w.meta.pageSize)
	if w.meta.pgid < 2 || w.meta.pgid > uint64(size/ps) {
		return w.damaged("it is %d bytes long, but its meta page %d counts %d pages of %d bytes: it was cut short (a copy that stopped, a full disk), or the count is damaged", size, w.metaPage, w.meta.pgid, ps)
	}
	err := w.walk()
	if errors.Is(err, errBoltWalkFound) {
		err = nil // not looking for a page
	}
	return err
}

// damaged returns a DamagedError of the walker's file.
func (w *boltWalker) damaged(format string, args ...any) error {
	return &DamagedError{Path: w.path, Reason: fmt.Sprintf(format, args...)}
}

// walk reads the freelist, then every page of every bucket, from the root
// bucket's page down.
func (w *boltWalker) walk() error {
	w.reached = newBoltPageSet(w.meta.pgid)
	w.free = newBoltPageSet(w.meta.pgid)
	w.reached.add(0)
	w.reached.add(1)
	meta := boltReach{from: w.metaPage}
	if w.meta.freelist != boltNoFreelist {
		if err := w.freelist(meta); err != nil {
			return err
		}
	}
	w.stack = w.stack[:0]
	if err := w.push(w.meta.root, meta, 1); err != nil {
		return err
	}
	for len(w.stack) > 0 {
		ref := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		if err := w.treePage(ref); err != nil {
			return err
		}
	}
	return nil
}

// push checks the page id that reach points to, marks it reached and
// queues it to be read.
func (w *boltWalker) push(id uint64, reach boltReach, depth int) error {
	if id < 2 || id >= w.meta.pgid {
		return w.damaged("%s points to page %d, %s", reach, id, w.outside(id))
	}
	if depth > boltWalkDepth {
		return w.damaged("%s points to page %d, %d pages below the meta page, deeper than a store's trees go (%d): its pages do not end", reach, id, depth, boltWalkDepth)
	}
	if err := w.reach(id, reach); err != nil {
		return err
	}
	w.stack = append(w.stack, boltWalkRef{id: id, reach: reach, depth: depth})
	return nil
}

// outside says how the page id lies outside the file's pages.
func (w *boltWalker) outside(id uint64) string {
	if id < 2 {
		return "a meta page, not a page of a tree"
	}
	return fmt.Sprintf("past the file's last page %d", w.meta.pgid-1)
}

// reach marks the page id, one of the file's, reached from reach: it was
// not reached before, and it is not free.
func (w *boltWalker) reach(id uint64, reach boltReach) error {
	if w.target != 0 && id == w.target {
		w.first = reach
		return errBoltWalkFound
	}
	if w.reached.has(id) {
		return w.damaged("page %d is reached twice: from %s and from %s: a page of a bbolt file has one parent, so a page id was damaged (a cycle, or two parents)", id, w.firstReach(id), reach)
	}
	if w.free.has(id) {
		return w.damaged("page %d is both free (the freelist lists it) and in use (reached from %s): a write would overwrite it", id, reach)
	}
	w.reached.add(id)
	return nil
}

// firstReach walks the file again, up to the first reach of the page id,
// and names it: it is kept nowhere, so that the walk's memory is a bit a
// page.
func (w *boltWalker) firstReach(id uint64) boltReach {
	again := &boltWalker{r: w.r, path: w.path, meta: w.meta, metaPage: w.metaPage, target: id}
	if err := again.walk(); !errors.Is(err, errBoltWalkFound) {
		return boltReach{from: w.metaPage} // not found again: cannot be, the file was read the same
	}
	return again.first
}

// read reads the page id (reached from reach), with its overflow pages,
// into w.buf, after it checks that they lie within the file, and marks
// the overflow pages reached. It returns the page, whose data is w.buf,
// until the next read.
func (w *boltWalker) read(id uint64, reach boltReach) (boltPage, error) {
	ps := int64(w.meta.pageSize)
	if int64(len(w.buf)) < ps {
		w.buf = make([]byte, ps)
	}
	if _, err := w.r.ReadAt(w.buf[:ps], int64(id)*ps); err != nil {
		return boltPage{}, fmt.Errorf("walk the pages of %s: read page %d: %w", w.path, id, err)
	}
	ord := binary.NativeEndian
	p := boltPage{id: ord.Uint64(w.buf[0:]), flags: ord.Uint16(w.buf[8:]), count: ord.Uint16(w.buf[10:]), overflow: ord.Uint32(w.buf[12:]), full: true}
	if p.id != id {
		return boltPage{}, w.damaged("page %d (reached from %s) says it is page %d", id, reach, p.id)
	}
	if last := id + uint64(p.overflow); last >= w.meta.pgid {
		return boltPage{}, w.damaged("page %d's overflow of %d pages (reached from %s) runs past the end of the file, whose last page is %d", id, p.overflow, reach, w.meta.pgid-1)
	}
	span := (int64(p.overflow) + 1) * ps
	if int64(len(w.buf)) < span {
		w.buf = append(w.buf[:ps], make([]byte, span-ps)...) // keeps the first page
	}
	if p.overflow > 0 {
		if _, err := w.r.ReadAt(w.buf[ps:span], int64(id)*ps+ps); err != nil {
			return boltPage{}, fmt.Errorf("walk the pages of %s: read page %d: %w", w.path, id, err)
		}
	}
	p.data = w.buf[:span]
	for i := uint64(1); i <= uint64(p.overflow); i++ {
		if err := w.reach(id+i, boltReach{from: id, elem: -1}); err != nil {
			return boltPage{}, err
		}
	}
	return p, nil
}

// freelist reads the freelist page (reached from reach) and marks the
// pages it lists free: each once, in order, a page of the file.
func (w *boltWalker) freelist(reach boltReach) error {
	id := w.meta.freelist
	if id < 2 || id >= w.meta.pgid {
		return w.damaged("the freelist is at page %d, %s", id, w.outside(id))
	}
	if err := w.reach(id, reach); err != nil {
		return err
	}
	p, err := w.read(id, reach)
	if err != nil {
		return err
	}
	if p.flags != boltFreelistPage {
		return w.damaged("the freelist page %d has page type %#x, not a freelist's", id, p.flags)
	}
	ord := binary.NativeEndian
	n, start := uint64(p.count), uint64(boltPageHeader)
	if p.count == 0xFFFF { // the count is in the first element
		n, start = ord.Uint64(p.data[boltPageHeader:]), boltPageHeader+8
	}
	if n > uint64(len(p.data))/8 || start+8*n > uint64(len(p.data)) {
		return w.damaged("the freelist page %d lists %d pages, more than it holds", id, n)
	}
	prev := uint64(1)
	for i := range n {
		free := ord.Uint64(p.data[start+8*i:])
		if free <= prev || free >= w.meta.pgid {
			return w.damaged("the freelist page %d lists page %d after page %d: free pages are listed once each, in order, from 2 to %d", id, free, prev, w.meta.pgid-1)
		}
		if w.reached.has(free) {
			return w.damaged("page %d is both free (the freelist lists it) and in use (it holds the freelist)", free)
		}
		w.free.add(free)
		prev = free
	}
	return nil
}

// treePage reads a page of a bucket's tree, checks that it is a branch or
// a leaf page whose elements lie within it, and queues the pages it points
// to: a branch's children, a leaf's buckets' root pages. An inline bucket
// (a bucket whose page is in its header's value) is checked where it is.
func (w *boltWalker) treePage(ref boltWalkRef) error {
	p, err := w.read(ref.id, ref.reach)
	if err != nil {
		return err
	}
	switch p.flags {
	case boltBranchPage:
		if p.count == 0 {
			return w.damaged("page %d (reached from %s) is a branch page with no elements", p.id, ref.reach)
		}
		if err := boltElementsWithin(p, len(p.data)); err != nil {
			return w.damaged("%v (reached from %s)", err, ref.reach)
		}
		// Last to first, so that the first child is read first.
		for i := int(p.count) - 1; i >= 0; i-- {
			child := binary.NativeEndian.Uint64(p.data[boltPageHeader+i*boltElemSize+8:])
			if err := w.push(child, boltReach{from: p.id, elem: i}, ref.depth+1); err != nil {
				return err
			}
		}
	case boltLeafPage:
		if err := boltElementsWithin(p, len(p.data)); err != nil {
			return w.damaged("%v (reached from %s)", err, ref.reach)
		}
		ord := binary.NativeEndian
		for i := range int(p.count) {
			at := boltPageHeader + i*boltElemSize
			e := p.data[at:]
			if ord.Uint32(e[0:])&boltBucketLeaf == 0 {
				continue
			}
			pos, ksize, vsize := int(ord.Uint32(e[4:])), int(ord.Uint32(e[8:])), int(ord.Uint32(e[12:]))
			value := p.data[at+pos+ksize : at+pos+ksize+vsize]
			if len(value) < boltBucketSize {
				return w.damaged("the bucket header of element %d of page %d is %d bytes, not %d", i, p.id, len(value), boltBucketSize)
			}
			if root := ord.Uint64(value); root != 0 {
				if err := w.push(root, boltReach{from: p.id, elem: i}, ref.depth+1); err != nil {
					return err
				}
				continue
			}
			if err := w.inline(value[boltBucketSize:], p.id, i); err != nil {
				return err
			}
		}
	default:
		return w.damaged("page %d (reached from %s) has page type %#x, neither a branch's nor a leaf's", p.id, ref.reach, p.flags)
	}
	return nil
}

// inline checks the inline bucket of element i of the page id: a leaf
// page within the element's value, whose elements lie within it and are
// not buckets (bbolt keeps a bucket inline only when it holds none).
func (w *boltWalker) inline(page []byte, id uint64, i int) error {
	if len(page) < boltPageHeader {
		return w.damaged("the inline bucket of element %d of page %d is cut short", i, id)
	}
	ord := binary.NativeEndian
	p := boltPage{id: id, flags: ord.Uint16(page[8:]), count: ord.Uint16(page[10:]), data: page, full: true}
	if p.flags != boltLeafPage {
		return w.damaged("the inline bucket of element %d of page %d has page type %#x, not a leaf's", i, id, p.flags)
	}
	if err := boltElementsWithin(p, len(page)); err != nil {
		return w.damaged("the inline bucket of element %d of page %d: %v", i, id, err)
	}
	for j := range int(p.count) {
		if ord.Uint32(page[boltPageHeader+j*boltElemSize:])&boltBucketLeaf != 0 {
			return w.damaged("the inline bucket of element %d of page %d holds a bucket (its element %d), which bbolt does not write", i, id, j)
		}
	}
	return nil
}
