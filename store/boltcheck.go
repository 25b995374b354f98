package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime"
	"strings"
)

// What the store checks of a bbolt file before bbolt maps it. bbolt keeps
// no checksum of its pages, only of its two meta pages, and trusts what it
// reads: a page of the wrong type, or a page id past the end of the file,
// makes it panic (or fault) when it walks the page, which would stop the
// process with a goroutine dump instead of an error. checkBoltOpenFile reads,
// at a cost that does not grow with the data the store holds, what every
// open walks: both meta pages, the freelist (which bbolt reads whole at
// every open for writing anyway), the page of the root bucket and the root
// page of each top-level bucket. A damaged page elsewhere is found when it
// is read: bbolt's panic is turned into a DamagedError (recoverDamage);
// the whole-file check walks every page (walkBoltPages, boltwalk.go).

// The layout of a bbolt file (go.etcd.io/bbolt/internal/common), in the
// machine's byte order.
const (
	boltPageHeader   = 16 // id u64, flags u16, count u16, overflow u32
	boltElemSize     = 16 // a leaf or branch page element
	boltBucketSize   = 16 // a bucket header: root page u64, sequence u64
	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltFreelistPage = 0x10
	boltBucketLeaf   = 0x01
	boltNoFreelist   = ^uint64(0)
	boltMagic        = 0xED0CDAED
	boltVersion      = 2

	// boltCheckSpan bounds the bytes of one page (with its overflow
	// pages) that checkBoltOpenFile reads: a root page is a few pages at
	// most, and a larger one is only checked for its header.
	boltCheckSpan = 1 << 20
)

// DamagedError is the error of a store found damaged: Path names the
// file (or database; "" when the reader does not know it) and Reason what
// is wrong. It is ErrDamaged, and Err, when set, is what it wraps besides
// (ErrDataKey for a sealed value that does not open).
type DamagedError struct {
	Path   string
	Reason string
	Err    error
}

// Error says what is damaged and what to do.
func (e *DamagedError) Error() string {
	const advice = "restore it from a backup (check the backup first with vultron store copy --from URL --to bolt:/tmp/check.db --data DATA)"
	if e.Path == "" {
		return fmt.Sprintf("%v: %s; %s", ErrDamaged, e.Reason, advice)
	}
	return fmt.Sprintf("%v: %s: %s; %s", ErrDamaged, e.Path, e.Reason, advice)
}

// Is makes a DamagedError ErrDamaged.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// Unwrap returns Err.
func (e *DamagedError) Unwrap() error { return e.Err }

// boltMetaPage is what a valid meta page of a bbolt file says.
type boltMetaPage struct {
	pageSize uint32
	root     uint64 // page of the root bucket
	freelist uint64 // page of the freelist, or boltNoFreelist
	pgid     uint64 // the high-water mark: pages below it are the file's
	txid     uint64 // the transaction that wrote it
}

// boltMeta reads the meta page at off of a bbolt file, and whether it is a
// valid meta page (magic, version, checksum, page size).
func boltMeta(r io.ReaderAt, off int64) (boltMetaPage, bool) {
	const metaSize = 64 // up to and with its checksum
	buf := make([]byte, boltPageHeader+metaSize)
	if _, err := r.ReadAt(buf, off); err != nil {
		return boltMetaPage{}, false
	}
	m := buf[boltPageHeader:]
	ord := binary.NativeEndian
	if ord.Uint32(m[0:]) != boltMagic || ord.Uint32(m[4:]) != boltVersion {
		return boltMetaPage{}, false
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if h.Sum64() != ord.Uint64(m[56:]) {
		return boltMetaPage{}, false
	}
	size := ord.Uint32(m[8:])
	if size < 1024 || size&(size-1) != 0 {
		return boltMetaPage{}, false
	}
	return boltMetaPage{
		pageSize: size,
		root:     ord.Uint64(m[16:]),
		freelist: ord.Uint64(m[32:]),
		pgid:     ord.Uint64(m[40:]),
		txid:     ord.Uint64(m[48:]),
	}, true
}

// boltMetas reads both meta pages of the file r: the newest valid one
// (the one bbolt opens), and whether each of the two is valid.
func boltMetas(r io.ReaderAt) (newest boltMetaPage, ok0, ok1 bool) {
	m0, ok0 := boltMeta(r, 0)
	size := uint32(os.Getpagesize())
	if ok0 {
		size = m0.pageSize
	}
	m1, ok1 := boltMeta(r, int64(size))
	if ok1 && ok0 && m1.pageSize != m0.pageSize {
		ok1 = false
	}
	switch {
	case ok0 && (!ok1 || m0.txid > m1.txid):
		return m0, ok0, ok1
	case ok1:
		return m1, ok0, ok1
	}
	return boltMetaPage{}, false, false
}

// checkBoltOpenFile refuses, with a DamagedError, the bbolt file f (at
// path) when its meta pages, freelist, root bucket or top-level buckets'
// root pages are not what bbolt wrote: a file cut short (bbolt would
// fault on the pages it maps past its end), a meta page that fails its
// checksum (bbolt would fall back on the other one, from the transaction
// before, and lose the last one), a page of the wrong type or an id past
// the end of the file (bbolt would panic). With walk, or when the file
// keeps no freelist (which bbolt then rebuilds at open by reading every
// page, in a goroutine where no recover reaches), it walks every page
// (walkBoltPages). An empty file passes.
func checkBoltOpenFile(f *os.File, path string, walk bool) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 || !fi.Mode().IsRegular() {
		return nil
	}
	damaged := func(format string, args ...any) error {
		return &DamagedError{Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	m, ok0, ok1 := boltMetas(f)
	switch {
	case !ok0 && !ok1:
		return damaged("neither of its two header pages is a valid bbolt meta page: it is not a store file, or both were damaged")
	case !ok0 || !ok1:
		bad := 0
		if ok0 {
			bad = 1
		}
		return damaged("its meta page %d, one of the two copies of its header, fails its checksum (a failing disk, a bad copy), and the last transaction written may have been in it", bad)
	}
	ps := int64(m.pageSize)
	// Compared as a count of pages, which cannot overflow as their bytes
	// can: every page id read below is then under fi.Size()/ps.
	if m.pgid > uint64(fi.Size()/ps) {
		return damaged("it is %d bytes long, but its meta page counts %d pages of %d bytes: it was cut short (a copy that stopped, a full disk), or the count is damaged", fi.Size(), m.pgid, ps)
	}
	c := &boltChecker{r: f, meta: m}
	if err := c.freelist(); err != nil {
		return damaged("%v", err)
	}
	if err := c.buckets(); err != nil {
		return damaged("%v", err)
	}
	if walk || m.freelist == boltNoFreelist {
		return walkBoltReader(f, fi.Size(), path, m)
	}
	return nil
}

// boltChecker reads the pages of one bbolt file as its meta page says.
type boltChecker struct {
	r    io.ReaderAt
	meta boltMetaPage
}

// boltPage is a page as read: its header and up to boltCheckSpan bytes of
// it (header included; whole when full is set).
type boltPage struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
	data     []byte
	full     bool
}

// page reads the page id, up to limit bytes of it, and checks that it is
// one of the file's and that its header names it.
func (c *boltChecker) page(id uint64, what string, limit int64) (boltPage, error) {
	if id < 2 || id >= c.meta.pgid {
		return boltPage{}, fmt.Errorf("%s is at page %d, outside the file's pages 2 to %d", what, id, c.meta.pgid-1)
	}
	ps := int64(c.meta.pageSize)
	hdr := make([]byte, boltPageHeader)
	if _, err := c.r.ReadAt(hdr, int64(id)*ps); err != nil {
		return boltPage{}, fmt.Errorf("%s: read page %d: %v", what, id, err)
	}
	ord := binary.NativeEndian
	p := boltPage{id: ord.Uint64(hdr[0:]), flags: ord.Uint16(hdr[8:]), count: ord.Uint16(hdr[10:]), overflow: ord.Uint32(hdr[12:])}
	if p.id != id {
		return boltPage{}, fmt.Errorf("%s: page %d says it is page %d", what, id, p.id)
	}
	if id+uint64(p.overflow) >= c.meta.pgid {
		return boltPage{}, fmt.Errorf("%s: page %d runs %d pages past the file's last page", what, id, id+uint64(p.overflow)-c.meta.pgid+1)
	}
	span := (int64(p.overflow) + 1) * ps
	p.full = span <= limit
	p.data = make([]byte, min(span, limit))
	if _, err := c.r.ReadAt(p.data, int64(id)*ps); err != nil {
		return boltPage{}, fmt.Errorf("%s: read page %d: %v", what, id, err)
	}
	return p, nil
}

// freelist checks the freelist page: its type, that the ids it counts fit
// in it, and, of the ids, which bbolt writes in order, those on its first
// page and the last: bbolt reads it at every open for writing, and would
// hand out a page past the end of the file, or one listed twice, to a
// write. The ids between the first page and the last id are not read,
// which would cost a pass over a list that grows with the file's free
// pages: a flipped byte there is not found at open (vultron store copy,
// which reads the buckets and not the freelist, copies the store whole
// into a file with a new one).
func (c *boltChecker) freelist() error {
	if c.meta.freelist == boltNoFreelist {
		return nil
	}
	ps := int64(c.meta.pageSize)
	p, err := c.page(c.meta.freelist, "the freelist", ps)
	if err != nil {
		return err
	}
	if p.flags != boltFreelistPage {
		return fmt.Errorf("the freelist page %d has page type %#x, not a freelist's", p.id, p.flags)
	}
	ord := binary.NativeEndian
	n, start := int64(p.count), int64(boltPageHeader)
	if p.count == 0xFFFF { // the count is in the first element
		n, start = int64(ord.Uint64(p.data[boltPageHeader:])), boltPageHeader+8
	}
	span := (int64(p.overflow) + 1) * ps
	if n < 0 || n > span/8 || start+8*n > span {
		return fmt.Errorf("the freelist page %d lists %d pages, more than it holds", p.id, n)
	}
	if n == 0 {
		return nil
	}
	onFirst := min(n, (ps-start)/8)
	ids := make([]uint64, 0, onFirst+1)
	for i := range onFirst {
		ids = append(ids, ord.Uint64(p.data[start+8*i:]))
	}
	if n > onFirst {
		last := make([]byte, 8)
		if _, err := c.r.ReadAt(last, int64(p.id)*ps+start+8*(n-1)); err != nil {
			return fmt.Errorf("the freelist: read page %d: %v", p.id, err)
		}
		ids = append(ids, ord.Uint64(last))
	}
	prev := uint64(1)
	for _, id := range ids {
		if id <= prev || id >= c.meta.pgid {
			return fmt.Errorf("the freelist page %d lists page %d after page %d: free pages are listed once each, in order, from 2 to %d", p.id, id, prev, c.meta.pgid-1)
		}
		prev = id
	}
	return nil
}

// buckets checks the page of the root bucket and the root page of each
// top-level bucket: every open reads them.
func (c *boltChecker) buckets() error {
	root, err := c.page(c.meta.root, "the root bucket", boltCheckSpan)
	if err != nil {
		return err
	}
	if err := c.elements(root, "the root bucket"); err != nil {
		return err
	}
	leaves := []boltPage{root}
	if root.flags == boltBranchPage {
		// Many top-level buckets: their headers are on the leaves.
		leaves = leaves[:0]
		for i := range int(root.count) {
			child := binary.NativeEndian.Uint64(root.data[boltPageHeader+i*boltElemSize+8:])
			leaf, err := c.page(child, "the root bucket", boltCheckSpan)
			if err != nil {
				return err
			}
			if leaf.flags != boltLeafPage {
				return fmt.Errorf("the root bucket: page %d has page type %#x, not a leaf's", leaf.id, leaf.flags)
			}
			if err := c.elements(leaf, "the root bucket"); err != nil {
				return err
			}
			leaves = append(leaves, leaf)
		}
	}
	ord := binary.NativeEndian
	for _, leaf := range leaves {
		if !leaf.full {
			continue
		}
		for i := range int(leaf.count) {
			e := leaf.data[boltPageHeader+i*boltElemSize:]
			if ord.Uint32(e[0:])&boltBucketLeaf == 0 {
				continue // a value in the root bucket: not the store's, found by Open
			}
			at := boltPageHeader + i*boltElemSize + int(ord.Uint32(e[4:]))
			name := leaf.data[at : at+int(ord.Uint32(e[8:]))]
			value := leaf.data[at+len(name) : at+len(name)+int(ord.Uint32(e[12:]))]
			what := fmt.Sprintf("bucket %q", name)
			if len(value) < boltBucketSize {
				return fmt.Errorf("%s: its header on page %d is %d bytes, not %d", what, leaf.id, len(value), boltBucketSize)
			}
			if id := ord.Uint64(value); id != 0 {
				b, err := c.page(id, what, boltCheckSpan)
				if err != nil {
					return err
				}
				if err := c.elements(b, what); err != nil {
					return err
				}
				continue
			}
			// An inline bucket: its page follows its header.
			inline := value[boltBucketSize:]
			if len(inline) < boltPageHeader {
				return fmt.Errorf("%s: its inline page on page %d is cut short", what, leaf.id)
			}
			p := boltPage{flags: ord.Uint16(inline[8:]), count: ord.Uint16(inline[10:]), data: inline, full: true}
			if p.flags != boltLeafPage {
				return fmt.Errorf("%s: its inline page on page %d has page type %#x, not a leaf's", what, leaf.id, p.flags)
			}
			if err := c.elementsIn(p, len(inline), what); err != nil {
				return err
			}
		}
	}
	return nil
}

// elements checks that p is a branch or leaf page whose elements lie
// within it, and that a branch's children are pages of the file.
func (c *boltChecker) elements(p boltPage, what string) error {
	if p.flags != boltBranchPage && p.flags != boltLeafPage {
		return fmt.Errorf("%s: page %d has page type %#x, neither a branch's nor a leaf's", what, p.id, p.flags)
	}
	if p.flags == boltBranchPage && p.count == 0 {
		return fmt.Errorf("%s: branch page %d has no elements", what, p.id)
	}
	span := (int(p.overflow) + 1) * int(c.meta.pageSize)
	if !p.full {
		return nil // a page this large is not a root page; bbolt reads it
	}
	if err := c.elementsIn(p, span, what); err != nil {
		return err
	}
	if p.flags == boltBranchPage {
		for i := range int(p.count) {
			child := binary.NativeEndian.Uint64(p.data[boltPageHeader+i*boltElemSize+8:])
			if child < 2 || child >= c.meta.pgid {
				return fmt.Errorf("%s: branch page %d points to page %d, outside the file's pages 2 to %d", what, p.id, child, c.meta.pgid-1)
			}
		}
	}
	return nil
}

// elementsIn checks that the elements of the page p, span bytes long, and
// the keys and values they point to lie within it; its error begins with
// what.
func (c *boltChecker) elementsIn(p boltPage, span int, what string) error {
	if err := boltElementsWithin(p, span); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// boltElementsWithin checks that the elements of the page p, span bytes
// long, and the keys and values they point to lie within it.
func boltElementsWithin(p boltPage, span int) error {
	ord := binary.NativeEndian
	n := int(p.count)
	if boltPageHeader+n*boltElemSize > min(span, len(p.data)) {
		return fmt.Errorf("page %d holds %d elements, more than fit in it", p.id, n)
	}
	for i := range n {
		at := boltPageHeader + i*boltElemSize
		e := p.data[at:]
		var end int
		if p.flags == boltLeafPage {
			end = at + int(ord.Uint32(e[4:])) + int(ord.Uint32(e[8:])) + int(ord.Uint32(e[12:]))
		} else {
			end = at + int(ord.Uint32(e[0:])) + int(ord.Uint32(e[4:]))
		}
		if end > span || end > len(p.data) || end < at {
			return fmt.Errorf("element %d of page %d points past the page's end", i, p.id)
		}
	}
	return nil
}

// recoverDamage, deferred by the caller of bbolt, turns a panic that bbolt
// raised (a page of the wrong type, a page id past the file's end), or a
// memory fault reading the file's mapping, into a DamagedError naming
// path in *errp, and runs cleanup. Any other panic is a programming error
// and goes on.
func recoverDamage(path string, errp *error, cleanup func()) {
	r := recover()
	if r == nil {
		return
	}
	if !raisedByBolt(r) {
		panic(r)
	}
	if cleanup != nil {
		cleanup()
	}
	*errp = &DamagedError{Path: path, Reason: fmt.Sprintf("bbolt stopped on a damaged page (%v)", r)}
}

// raisedByBolt reports whether the panic r being recovered was raised in
// bbolt's code (the first function under the runtime's frames of the
// panic is bbolt's), or is a fault of memory (the file's mapping).
func raisedByBolt(r any) bool {
	if _, fault := r.(interface{ Addr() uintptr }); fault {
		return true
	}
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt.") || strings.HasPrefix(f.Function, "go.etcd.io/bbolt/")
		}
		if !more {
			return false
		}
	}
}
