package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Records are stored in a compact binary form rather than JSON: the hot path
// (inbox accepts) writes an activity body of a few kilobytes per request, and
// JSON would base64 the body and cost an encode/decode per write. Every record
// starts with a one-byte record tag that names its type and layout version,
// followed by its fields in a fixed order. Integers are unsigned varints,
// byte strings and strings are a uvarint length followed by the bytes, and
// times are a presence byte followed by a varint of Unix nanoseconds (UTC).
// A decoder rejects an unknown tag, a truncated field and trailing bytes, so a
// layout change needs a new tag or a schema version bump.

// Record tags. Do not reuse or renumber a tag: it is part of the file format.
const (
	tagActivity byte = 0x01
	tagDedup    byte = 0x02
	tagDelivery byte = 0x03
	tagActor    byte = 0x04
	tagKey      byte = 0x05
	// 0x06 is the audit record's (audit.go), 0x09 the audit record's
	// with a principal; 0x07 was a dashboard session's, before sessions
	// moved to the accounts bucket; 0x08 is a follow's and 0x0B a
	// failed or gone follow's with its reason, 0x0D a gone shared
	// inbox's (follows.go), 0x0C a fan-out cursor's (fanout.go), 0x0E
	// a damaged delivery's note (damageddelivery.go).
	// tagActivitySentBy is an activity with the person who sent it.
	tagActivitySentBy byte = 0x0A
)

// errCorrupt marks a record that cannot be decoded: the store is
// damaged.
var errCorrupt = fmt.Errorf("%w (restore it from a backup): corrupt record", ErrDamaged)

// encoder appends fields to a byte slice.
type encoder struct {
	buf []byte
}

func newEncoder(tag byte, sizeHint int) *encoder {
	e := &encoder{buf: make([]byte, 0, sizeHint+1)}
	e.buf = append(e.buf, tag)
	return e
}

func (e *encoder) uvarint(v uint64) {
	e.buf = binary.AppendUvarint(e.buf, v)
}

func (e *encoder) bytes(b []byte) {
	e.uvarint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) strings(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.string(s)
	}
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.buf = append(e.buf, 0)
		return
	}
	e.buf = append(e.buf, 1)
	e.buf = binary.AppendVarint(e.buf, t.UnixNano())
}

// decoder reads fields written by encoder. The first error is sticky: later
// reads return zero values and err reports it.
type decoder struct {
	buf []byte
	err error
}

func newDecoder(tag byte, b []byte) *decoder {
	d := &decoder{buf: b}
	if len(b) == 0 {
		d.err = fmt.Errorf("%w: empty", errCorrupt)
		return d
	}
	if b[0] != tag {
		d.err = fmt.Errorf("%w: record tag %#x, want %#x", errCorrupt, b[0], tag)
		return d
	}
	d.buf = b[1:]
	return d
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errCorrupt, what)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// bytes returns a copy of the next byte string, so the result stays valid
// after the transaction that produced the input ends.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("byte string")
		return nil
	}
	out := make([]byte, n)
	copy(out, d.buf[:n])
	d.buf = d.buf[n:]
	return out
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.buf)) {
		d.fail("string")
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) { // each string needs at least one byte
		d.fail("string list")
		return nil
	}
	out := make([]string, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, d.string())
	}
	return out
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	if len(d.buf) == 0 {
		d.fail("time")
		return time.Time{}
	}
	present := d.buf[0]
	d.buf = d.buf[1:]
	switch present {
	case 0:
		return time.Time{}
	case 1:
	default:
		d.err = fmt.Errorf("%w: bad time marker %#x", errCorrupt, present)
		return time.Time{}
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("time")
		return time.Time{}
	}
	d.buf = d.buf[n:]
	return time.Unix(0, v).UTC()
}

// finish reports the first decoding error, or an error if bytes remain.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.buf))
	}
	return nil
}

// seqKey encodes a sequence number as an 8-byte big-endian key, so that keys
// sort in insertion order and inserts append to the rightmost page.
func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// keySeq decodes a key written by seqKey.
func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// cloneBytes returns a copy of b that is safe to use after the transaction
// that produced b has ended. A nil input stays nil.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out
}
