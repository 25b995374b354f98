package cases

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// Deadline clocks are derived from what the ledger (and, before a case, a
// receiver's report record) says, never set by hand: a clock runs while
// its participant is in the state the clock measures, from the time of the
// entry that put it there, and stops with the entry that takes it out. So
// that listing what is due and counting what is overdue cost no scan of
// every case, the running clocks are indexed by kind and start time in the
// case bucket named by clockBucket, and kept in the transaction that
// writes the case record (saveCase) or the report record (writeReport):
//
//	index/KIND 0 START SUBJECT 0 PARTICIPANT   the Clock (JSON), in start
//	                                           order per kind; a due time is
//	                                           a monotone function of the
//	                                           start for each kind, so this
//	                                           is also due order
//	open/CASE                                  a case's running clocks and a
//	                                           fingerprint of the state they
//	                                           were derived from (its open
//	                                           record)
//	count/KIND                                 running clocks of the kind
//	passed/KIND                                running clocks of the kind
//	                                           announced as passed
//
// A report's open record is in the report's own bucket, under
// keyReportClocks beside the local actors' records: the transaction that
// changes its clocks writes that bucket anyway, where a key in open/ cost
// every received report a page at a random place of a growing tree. An
// open record names each clock's kind, start and participant, what its
// index key is made of; the index holds the whole clock. Records written
// before that hold whole clocks and are read as they are; a report's that
// older releases kept in open/ moves to its bucket when the node starts
// (MoveReportClocks), before anything reads or writes it.
//
// START is 8 bytes of big-endian Unix nanoseconds (offset so that times
// before 1970 sort first); SUBJECT is a case id or a report id. How long
// each clock may run, and on what calendar, is the node's configuration
// (package deadline): changing it changes due times, never the index.

// clockBucket is the case-bucket name of the deadline index; like
// caseCounts it is no URL, so it cannot clash with a case id.
const clockBucket = "deadline clocks"

// The kinds of deadline clock.
const (
	// ClockAcknowledge runs while a participant (or the receiver of a
	// report) has received it and not yet answered: RECEIVED.
	ClockAcknowledge = "acknowledge"
	// ClockValidate runs until the report is found valid or closed:
	// RECEIVED or INVALID.
	ClockValidate = "validate"
	// ClockEngage runs while a participant found the report valid and has
	// not decided to work on it, defer it or close it: VALID.
	ClockEngage = "engage"
	// ClockFix runs while a vendor works on the case (ACCEPTED or
	// DEFERRED) and its fix is not ready.
	ClockFix = "fix"
	// ClockCRAEarlyWarning and ClockCRANotification run for a vendor from
	// the entry that recorded attacks (A), as the EU Cyber Resilience Act
	// (Article 14) counts its early warning and notification; they stop
	// when the vendor closes the case.
	ClockCRAEarlyWarning = "cra_early_warning"
	ClockCRANotification = "cra_notification"
	// ClockCRAFinalReport runs for a vendor from the entry that made both
	// attacks observed and its fix ready true.
	ClockCRAFinalReport = "cra_final_report"
	// ClockEmbargoEnd is the end of the embargo in force: it starts at the
	// end itself and stops when the embargo ends or is revised.
	ClockEmbargoEnd = "embargo_end"
	// ClockEmbargoRSVP is a participant's deadline to answer the open
	// embargo proposals it was invited to (Case.RSVPDeadline): it starts
	// at the deadline itself and stops when the participant answers or
	// the proposals close. Past it, the participant counts as having
	// declined.
	ClockEmbargoRSVP = "embargo_rsvp"
)

// ClockKinds returns every kind of clock.
func ClockKinds() []string {
	return []string{ClockAcknowledge, ClockValidate, ClockEngage, ClockFix,
		ClockCRAEarlyWarning, ClockCRANotification, ClockCRAFinalReport, ClockEmbargoEnd, ClockEmbargoRSVP}
}

// Clock is one running deadline clock.
type Clock struct {
	Kind  string    `json:"kind"`
	Start time.Time `json:"start"`
	// Subject is the case, or before a case exists the report, the clock
	// belongs to; Report says which.
	Subject string `json:"subject"`
	Report  bool   `json:"report,omitempty"`
	Name    string `json:"name,omitempty"` // the case's or report's name
	// Participant is the actor whose clock it is; empty for the case's
	// embargo. Local is the local actor's name for a report's clock.
	Participant string `json:"participant,omitempty"`
	Local       string `json:"local,omitempty"`
	// Near and Passed record that the node announced the clock's
	// approach and its passing (SetClockFlags).
	Near   bool `json:"near,omitempty"`
	Passed bool `json:"passed,omitempty"`
	// Key is the clock's index key.
	Key []byte `json:"-"`
}

// clockOf names a running clock of a subject: its kind and participant.
type clockOf struct{ Kind, Participant string }

// keyReportClocks is the key of a report's open record in the report's
// bucket; no local actor's record has it, since actor names begin with a
// letter or a digit.
var keyReportClocks = []byte("\x00clocks")

// openClock is a running clock as its subject's open record keeps it: what
// its index key is made of, but the subject, which is the record's.
// Records written before it held whole Clocks, of which Name is read too.
type openClock struct {
	Kind        string    `json:"kind"`
	Start       time.Time `json:"start"`
	Participant string    `json:"participant,omitempty"`
	Local       string    `json:"local,omitempty"`
	Name        string    `json:"name,omitempty"`
}

// openClocks is what a subject's open record holds: its clocks and the
// subject's name, which they all carry.
type openClocks struct {
	Fingerprint uint64               `json:"fp"`
	Name        string               `json:"name,omitempty"`
	Clocks      map[string]openClock `json:"clocks"` // by clockName
}

// running returns the clocks of the open record o of subject.
func (o openClocks) running(subject string, report bool) map[string]Clock {
	out := make(map[string]Clock, len(o.Clocks))
	for name, c := range o.Clocks {
		out[name] = Clock{Kind: c.Kind, Start: c.Start, Subject: subject, Report: report,
			Name: cmp.Or(c.Name, o.Name), Participant: c.Participant, Local: c.Local}
	}
	return out
}

func clockName(k clockOf) string { return k.Kind + " " + k.Participant }

// startKey encodes t so that keys sort in time order.
func startKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())^(1<<63))
}

func indexKey(c Clock) []byte {
	k := append([]byte(c.Kind+"\x00"), startKey(c.Start)...)
	k = append(k, c.Subject...)
	return append(append(k, 0), c.Participant+c.Local...)
}

// wantedClocks returns the clocks case c runs now, each with its start when
// it is fixed by the state (the embargo's end) and zero when it starts at
// the entry that makes it run.
func wantedClocks(c *Case) map[clockOf]time.Time {
	out := map[clockOf]time.Time{}
	if c.ID == "" || c.Closed() {
		return out
	}
	attacks := c.PXA&cvdstate.PXAAttacks != 0
	for _, p := range c.Participants {
		if !p.Engaged() {
			continue
		}
		add := func(kind string) { out[clockOf{kind, p.Actor}] = time.Time{} }
		if by := c.RSVPDeadline(p); !by.IsZero() {
			out[clockOf{ClockEmbargoRSVP, p.Actor}] = by
		}
		switch p.RM {
		case cvdstate.RMReceived:
			add(ClockAcknowledge)
			add(ClockValidate)
		case cvdstate.RMInvalid:
			add(ClockValidate)
		case cvdstate.RMValid:
			add(ClockEngage)
		}
		if !p.Roles.Has(cvdstate.Vendor) {
			continue
		}
		if (p.RM == cvdstate.RMAccepted || p.RM == cvdstate.RMDeferred) && p.VFD < cvdstate.VFDFixReady {
			add(ClockFix)
		}
		if attacks {
			add(ClockCRAEarlyWarning)
			add(ClockCRANotification)
			if p.VFD >= cvdstate.VFDFixReady {
				add(ClockCRAFinalReport)
			}
		}
	}
	if c.EM.InForce() && c.Embargo != nil {
		out[clockOf{ClockEmbargoEnd, ""}] = c.Embargo.End
	}
	return out
}

// caseFingerprint hashes what the clocks of c depend on, so that a save
// that changes none of it costs one read.
func caseFingerprint(c *Case) uint64 {
	h := fnv.New64a()
	var buf []byte
	buf = fmt.Appendf(buf, "%t|%s|%s|", c.Closed(), c.EM, c.PXA)
	if c.Embargo != nil {
		buf = fmt.Appendf(buf, "%d|", c.Embargo.End.UnixNano())
	}
	for _, pr := range c.Proposals {
		buf = fmt.Appendf(buf, "%s|%s|%d;", pr.InviteID, pr.Terms.Proposer, pr.RSVPBy.UnixNano())
	}
	for _, p := range c.Participants {
		buf = fmt.Appendf(buf, "%s|%d|%d|%d|%t|%d;", p.Actor, p.RM, p.VFD, p.Roles, p.Removed, p.PEC)
	}
	h.Write(buf)
	return h.Sum64()
}

// indexCaseClocks brings the deadline index in line with case c, whose
// record is being saved: clocks its state no longer runs stop, clocks it
// now runs start at c.UpdatedAt (the time of the entry being applied), and
// running ones keep their start.
func indexCaseClocks(tx *store.Tx, c *Case) error {
	want := wantedClocks(c)
	return syncClocks(tx, c.ID, false, caseFingerprint(c), len(want) == 0, func(open map[string]Clock) map[string]Clock {
		next := make(map[string]Clock, len(want))
		for k, fixed := range want {
			name := clockName(k)
			if cl, ok := open[name]; ok && (fixed.IsZero() || cl.Start.Equal(fixed)) {
				cl.Name = c.Name
				next[name] = cl
				continue
			}
			start := fixed
			if start.IsZero() {
				start = c.UpdatedAt
			}
			next[name] = Clock{Kind: k.Kind, Start: start.UTC(), Subject: c.ID, Name: c.Name, Participant: k.Participant}
		}
		return next
	})
}

// indexReportClocks keeps the clocks of a receiver's report record: it
// must acknowledge and validate the report it received.
func indexReportClocks(tx *store.Tx, r ReportRecord) error {
	if r.Role != Receiver {
		return nil
	}
	subject := r.ReportID
	var want []string
	switch {
	case r.CaseID != "":
		// The case runs the clocks from here on.
	case r.RM == cvdstate.RMReceived:
		want = []string{ClockAcknowledge, ClockValidate}
	case r.RM == cvdstate.RMInvalid:
		want = []string{ClockValidate}
	}
	fp := fnv.New64a()
	fmt.Fprintf(fp, "%s|%s|%s", r.Actor, r.RM, r.CaseID)
	return syncClocks(tx, subject, true, fp.Sum64(), len(want) == 0, func(open map[string]Clock) map[string]Clock {
		next := map[string]Clock{}
		for _, kind := range want {
			name := clockName(clockOf{kind, "local:" + r.Actor})
			if cl, ok := open[name]; ok {
				next[name] = cl
				continue
			}
			next[name] = Clock{Kind: kind, Start: r.UpdatedAt.UTC(), Subject: subject, Report: true, Name: r.Name, Local: r.Actor}
		}
		// A report has one record per local actor; keep the others'.
		for name, cl := range open {
			if cl.Local != r.Actor {
				next[name] = cl
			}
		}
		return next
	})
}

// syncClocks replaces the running clocks of subject (a report when report
// is set, else a case) with what derive returns from them, updating the
// index and the counts. A subject whose fingerprint did not change is left
// alone; one with no clocks and none open costs one read.
func syncClocks(tx *store.Tx, subject string, report bool, fp uint64, none bool, derive func(open map[string]Clock) map[string]Clock) error {
	root, openB, err := clockOpen(tx)
	if err != nil {
		return err
	}
	home, key := openB, []byte(subject)
	if report {
		if home, err = tx.Case(reportBucket(subject)); err != nil {
			return err
		}
		key = keyReportClocks
	}
	v := home.Get(key)
	var open openClocks
	if v != nil {
		if err := json.Unmarshal(v, &open); err != nil {
			return fmt.Errorf("deadline clocks of %s: decode: %w", subject, err)
		}
		if open.Fingerprint == fp {
			return nil
		}
	} else if none {
		return nil
	}
	running := open.running(subject, report)
	next := derive(running)
	index, err := root.Bucket("index")
	if err != nil {
		return err
	}
	counts, err := root.Bucket("count")
	if err != nil {
		return err
	}
	for name, cl := range running {
		if n, ok := next[name]; ok && n.Start.Equal(cl.Start) {
			continue
		}
		key := indexKey(cl)
		if v := index.Get(key); v != nil {
			var stored Clock
			if err := json.Unmarshal(v, &stored); err != nil {
				return fmt.Errorf("deadline clock %q: decode: %w", key, err)
			}
			if stored.Passed {
				if err := addClockCount(counts, "passed "+cl.Kind, -1); err != nil {
					return err
				}
			}
		}
		if err := index.Delete(key); err != nil {
			return err
		}
		if err := addClockCount(counts, cl.Kind, -1); err != nil {
			return err
		}
	}
	for name, cl := range next {
		if o, ok := running[name]; ok && o.Start.Equal(cl.Start) {
			continue
		}
		if err := putClock(index, cl); err != nil {
			return err
		}
		if err := addClockCount(counts, cl.Kind, 1); err != nil {
			return err
		}
	}
	if len(next) == 0 {
		return home.Delete(key)
	}
	rec := openClocks{Fingerprint: fp, Clocks: make(map[string]openClock, len(next))}
	for name, cl := range next {
		rec.Clocks[name] = openClock{Kind: cl.Kind, Start: cl.Start, Participant: cl.Participant, Local: cl.Local}
		// Every clock carries the subject's name; the greatest, so that
		// the record does not depend on the map's order.
		rec.Name = max(rec.Name, cl.Name)
	}
	if v, err = json.Marshal(rec); err != nil {
		return fmt.Errorf("deadline clocks of %s: encode: %w", subject, err)
	}
	return home.Put(key, v)
}

func putClock(index *store.CaseBucket, cl Clock) error {
	v, err := json.Marshal(cl)
	if err != nil {
		return fmt.Errorf("deadline clock %s of %s: encode: %w", cl.Kind, cl.Subject, err)
	}
	return index.Put(indexKey(cl), v)
}

func addClockCount(counts *store.CaseBucket, kind string, delta int64) error {
	var n int64
	if v := counts.Get([]byte(kind)); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n = max(n+delta, 0)
	return counts.Put([]byte(kind), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// errStopClocks ends a walk of the index early.
var errStopClocks = errors.New("stop")

// Clocks calls fn with the running clocks of one kind in start order (for
// each kind, also due order), from the first whose index key follows
// after (nil: from the first), until fn returns false. Its cost is the
// clocks fn sees.
func Clocks(tx *store.ReadTx, kind string, after []byte, fn func(Clock) bool) error {
	index, err := clockSub(tx, "index")
	if index == nil || err != nil {
		return err
	}
	prefix := []byte(kind + "\x00")
	from := prefix
	if after != nil {
		from = append(slices.Clone(after), 0)
	}
	err = index.Range(from, func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefix) {
			return errStopClocks
		}
		var cl Clock
		if err := json.Unmarshal(v, &cl); err != nil {
			return fmt.Errorf("deadline clock %q: decode: %w", k, err)
		}
		cl.Key = k
		if !fn(cl) {
			return errStopClocks
		}
		return nil
	})
	if errors.Is(err, errStopClocks) {
		return nil
	}
	return err
}

// SubjectClocks returns the running clocks of one case or report, in index
// key order, from the subject's open record alone: a case of thousands of
// participants runs thousands of clocks, and reading each from the index
// would cost a read per clock (a round trip on PostgreSQL). The clocks
// carry no Near or Passed flags (SetClockFlags keeps those in the index).
func SubjectClocks(tx *store.ReadTx, subject string) ([]Clock, error) {
	var v []byte
	report := false
	if b, err := tx.Case(reportBucket(subject)); err == nil {
		v = b.Get(keyReportClocks)
		report = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if !report {
		openB, err := clockSub(tx, "open")
		if openB == nil || err != nil {
			return nil, err
		}
		v = openB.Get([]byte(subject))
	}
	if v == nil {
		return nil, nil
	}
	var open openClocks
	if err := json.Unmarshal(v, &open); err != nil {
		return nil, fmt.Errorf("deadline clocks of %s: decode: %w", subject, err)
	}
	out := make([]Clock, 0, len(open.Clocks))
	for _, cl := range open.running(subject, report) {
		cl.Key = indexKey(cl)
		out = append(out, cl)
	}
	slices.SortFunc(out, func(a, b Clock) int { return bytes.Compare(a.Key, b.Key) })
	return out, nil
}

// ClockCount is how many clocks of a kind run, and how many of them were
// announced as passed (SetClockFlags).
type ClockCount struct {
	Running, Passed int64
}

// ClockCounts returns the counts of each kind of clock; kinds none runs
// are absent. Its cost does not grow with the number of cases.
func ClockCounts(tx *store.ReadTx) (map[string]ClockCount, error) {
	counts, err := clockSub(tx, "count")
	if counts == nil || err != nil {
		return map[string]ClockCount{}, err
	}
	out := map[string]ClockCount{}
	err = counts.ForEach(func(k, v []byte) error {
		if len(v) != 8 || binary.BigEndian.Uint64(v) == 0 {
			return nil
		}
		n := int64(binary.BigEndian.Uint64(v))
		if kind, ok := strings.CutPrefix(string(k), "passed "); ok {
			c := out[kind]
			c.Passed = n
			out[kind] = c
			return nil
		}
		c := out[string(k)]
		c.Running = n
		out[string(k)] = c
		return nil
	})
	return out, err
}

// ClockFlags is what the node announced of one running clock: its
// approach (Near) or its passing (Passed). Key is the clock's index key
// (Clock.Key).
type ClockFlags struct {
	Key          []byte
	Near, Passed bool
}

// SetClockFlags records, for each of flags, that the approach or the
// passing of a running clock was announced, and counts the clocks
// announced as passed. A clock that stopped or restarted since it was read
// is left alone: applied says, for each of flags, whether it was recorded.
// The clocks are read ahead together (store.CaseBucket.ReadAhead), so a
// sweep that announces thousands of deadlines at once asks PostgreSQL
// once for them, not once per clock, while it holds the writer lock.
func SetClockFlags(tx *store.Tx, flags []ClockFlags) (applied []bool, err error) {
	applied = make([]bool, len(flags))
	if len(flags) == 0 {
		return applied, nil
	}
	root, err := tx.Case(clockBucket)
	if err != nil {
		return nil, err
	}
	index, err := root.Bucket("index")
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(flags))
	for i, f := range flags {
		keys[i] = f.Key
	}
	index.ReadAhead(keys)
	var counts *store.CaseBucket
	for i, f := range flags {
		v := index.Get(f.Key)
		if v == nil {
			continue
		}
		var cl Clock
		if err := json.Unmarshal(v, &cl); err != nil {
			return nil, fmt.Errorf("deadline clock %q: decode: %w", f.Key, err)
		}
		if f.Passed && !cl.Passed {
			if counts == nil {
				if counts, err = root.Bucket("count"); err != nil {
					return nil, err
				}
			}
			if err := addClockCount(counts, "passed "+cl.Kind, 1); err != nil {
				return nil, err
			}
		}
		cl.Near, cl.Passed = cl.Near || f.Near, cl.Passed || f.Passed
		if err := putClock(index, cl); err != nil {
			return nil, err
		}
		applied[i] = true
	}
	return applied, nil
}

// clockOpen returns, for writing, the deadline index's root and its open/
// bucket, creating them if need be.
func clockOpen(tx *store.Tx) (root, open *store.CaseBucket, err error) {
	if root, err = tx.Case(clockBucket); err != nil {
		return nil, nil, err
	}
	open, err = root.Bucket("open")
	return root, open, err
}

// clockSub returns a sub-bucket of the deadline index for reading, nil if
// nothing was ever indexed.
func clockSub(tx *store.ReadTx, name string) (*store.CaseBucket, error) {
	root, err := tx.Case(clockBucket)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := root.Bucket(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// keyClocksComplete marks, in the deadline index's root, a store whose
// cases and reports have all been indexed (MigrateClocks).
var keyClocksComplete = []byte("complete")

// keyReportClocksMoved marks, in the deadline index's root, a store whose
// reports' open records are all in the reports' buckets (MoveReportClocks).
var keyReportClocksMoved = []byte("report clocks moved")

// MoveReportClocks moves, once, the open records of reports that releases
// before schema version 3 kept in open/ into the reports' own buckets, in
// transactions of migrateCountsPage keys of open/, and then marks the
// store, so that the node reads a report's clocks in one place only. A
// report whose bucket already holds a record keeps that one, the newer.
// A run that stops half-way is taken up by the next. It returns how many
// records it moved.
func MoveReportClocks(ctx context.Context, db *store.DB) (int, error) {
	done := false
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		root, err := tx.Case(clockBucket)
		done = errors.Is(err, store.ErrNotFound) || (err == nil && root.Get(keyReportClocksMoved) != nil)
		return nil
	}); err != nil || done {
		return 0, err
	}
	total := 0
	var after []byte
	for {
		more, moved := false, 0
		var last []byte
		err := db.Update(ctx, func(tx *store.Tx) error {
			more, moved, last = false, 0, nil
			root, openB, err := clockOpen(tx)
			if err != nil {
				return err
			}
			type record struct{ subject, v []byte }
			var page []record
			err = openB.Range(after, func(k, v []byte) error {
				if after != nil && bytes.Equal(k, after) {
					return nil
				}
				if len(page) == migrateCountsPage {
					more = true
					return errStopClocks
				}
				page = append(page, record{bytes.Clone(k), bytes.Clone(v)})
				return nil
			})
			if err != nil && !errors.Is(err, errStopClocks) {
				return err
			}
			for _, r := range page {
				last = r.subject
				b, err := tx.ReadTx.Case(reportBucket(string(r.subject)))
				if errors.Is(err, store.ErrNotFound) {
					continue // a case's record
				}
				if err != nil {
					return err
				}
				if b.Get(keyReportClocks) == nil {
					home, err := tx.Case(reportBucket(string(r.subject)))
					if err != nil {
						return err
					}
					if err := home.Put(keyReportClocks, r.v); err != nil {
						return err
					}
				}
				if err := openB.Delete(r.subject); err != nil {
					return err
				}
				moved++
			}
			if more {
				return nil
			}
			return root.Put(keyReportClocksMoved, []byte{1})
		})
		if err != nil {
			return total, fmt.Errorf("move the reports' deadline clocks: %w", err)
		}
		total += moved
		if !more {
			return total, nil
		}
		after = last
	}
}

// MigrateClocks indexes, once, the clocks of the cases and reports of a
// store written before the deadline index existed, in pages of
// migrateCountsPage, one transaction each; a clock it starts takes the
// time of the record's last change, the nearest the record says. A run
// that stops half-way is taken up by the next. It returns how many cases
// and reports it looked at.
func MigrateClocks(ctx context.Context, db *store.DB) (int, error) {
	n, err := walkCaseBuckets(ctx, db, migrateCountsPage, 0, caseBucketWalk{
		done: func(tx *store.ReadTx) bool {
			root, err := tx.Case(clockBucket)
			return err == nil && root.Get(keyClocksComplete) != nil
		},
		visit: func(tx *store.Tx, id string) (bool, error) {
			if reportID, ok := strings.CutPrefix(id, "report "); ok {
				b, err := tx.Case(id)
				if err != nil {
					return false, err
				}
				var recs []ReportRecord
				if err := eachRecord(b, reportID, func(r ReportRecord) error {
					recs = append(recs, r)
					return nil
				}); err != nil {
					return false, err
				}
				// What a store indexed before has no place in an index
				// built again from the records.
				if err := b.Delete(keyReportClocks); err != nil {
					return false, err
				}
				for _, r := range recs {
					if err := indexReportClocks(tx, r); err != nil {
						return false, err
					}
				}
				return len(recs) > 0, nil
			}
			c, err := loadCase(&tx.ReadTx, id)
			if err != nil || c == nil || c.ID == "" {
				return false, err // an index, a replica with no record yet
			}
			return true, indexCaseClocks(tx, c)
		},
		finish: func(tx *store.Tx) error {
			root, err := tx.Case(clockBucket)
			if err != nil {
				return err
			}
			return root.Put(keyClocksComplete, []byte{1})
		},
	})
	if err != nil {
		return n, fmt.Errorf("index deadline clocks: %w", err)
	}
	return n, nil
}
