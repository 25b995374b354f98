package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
)

// A case's data lives in the store's case bucket named by the case id:
//
//	case       the Case folded from the ledger (JSON), without its notes:
//	           noteCount says how many there are
//	host       present when this node hosts the case: its Case Actor's name
//	replica    for a replica: the receive state of the ledger (JSON)
//	ledger/    log index (big-endian) → entry (JSON wire form)
//	hashes/    entry hash → log index, to find where a replay starts
//	invited/   local actor name → the Case Actor that invited it
//	notes/     position (store.SeqKey, from 0) → one Note (JSON)
//	noteids/   note id → its position in notes/ (store.SeqKey)
//	participant ACTOR  the index of participants: the actor's state
//	           in the case and its CaseParticipant id (participants.go),
//	           so that whether an actor still takes part is one read;
//	           "participants indexed" holds the fingerprint of what it
//	           was written from
//	counted as the state the case is counted in (counts.go)
//
// The notes live apart from the record because every entry a case records
// or replicates decodes and encodes the record: with the notes in it, a
// long case paid for all of them at every entry. Records written before
// (with the notes under "notes" and no noteCount) are read as holding
// their notes not yet stored, and MigrateNotes moves them.
//
// The bucket named by objectIndex maps the id of every activity recorded in
// any case's ledger to its case and log index, so that a participant can
// answer an activity it knows only from the ledger (an embargo proposal, an
// ownership offer) by naming its id. The bucket named by notesMigrated
// exists once MigrateNotes has moved the notes of every case. The bucket
// named by caseCounts holds the number of cases in each state (counts.go).

// objectIndex is the case-bucket name of the index of recorded activities;
// it cannot clash with a case id, which is an absolute URL.
const objectIndex = "index of recorded activities"

// caseLinks is the case-bucket name of the index of relations between
// cases, kept from both ends: key "<case>\n<other case>" → the relation
// the other case has to it, so that a case's page lists the cases that
// name it as well as those it names. Like objectIndex it is no URL.
const caseLinks = "index of case relations"

// notesMigrated is the case-bucket name whose presence says that no case
// record holds its notes any more; like objectIndex it is no URL.
const notesMigrated = "notes moved out of the case records"

var (
	keyCase    = []byte("case")
	keyHost    = []byte("host")
	keyReplica = []byte("replica")
)

// Sub-buckets of a case bucket that hold its notes.
const (
	bucketNotes   = "notes"
	bucketNoteIDs = "noteids"
)

// storedRecord is the record under "case" as loadCase decodes it: the Case
// and, in a record written before the notes moved to notes/, the notes.
type storedRecord struct {
	Case
	Notes []Note `json:"notes,omitempty"`
}

// loadCase returns the case with the given id, or nil when this node has
// none.
func loadCase(tx *store.ReadTx, id string) (*Case, error) {
	b, err := tx.Case(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := b.Get(keyCase)
	if v == nil {
		return nil, nil
	}
	var rec storedRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("case %s: decode: %w", id, err)
	}
	c := &rec.Case
	if len(rec.Notes) > 0 && c.NoteCount == 0 {
		// A record from before notes/: its notes are not stored apart
		// yet, and the next saveCase stores them at positions 0….
		c.pending, c.NoteCount = rec.Notes, len(rec.Notes)
	}
	c.storedNote = noteStored(b)
	return c, nil
}

// noteStored returns a lookup of note ids in the noteids/ bucket of case
// bucket b, valid while b's transaction is.
func noteStored(b *store.CaseBucket) func(id string) bool {
	return func(id string) bool {
		ids, err := b.Bucket(bucketNoteIDs)
		return err == nil && ids.Get([]byte(id)) != nil
	}
}

// saveCase stores the case's record and its pending notes, which it
// appends to notes/ and noteids/ after the notes stored before.
func saveCase(tx *store.Tx, c *Case) error {
	b, err := tx.Case(c.ID)
	if err != nil {
		return err
	}
	if len(c.pending) > 0 {
		notes, err := b.Bucket(bucketNotes)
		if err != nil {
			return err
		}
		ids, err := b.Bucket(bucketNoteIDs)
		if err != nil {
			return err
		}
		first := c.NoteCount - len(c.pending)
		for i, n := range c.pending {
			v, err := json.Marshal(n)
			if err != nil {
				return fmt.Errorf("case %s: encode note %s: %w", c.ID, n.ID, err)
			}
			key := store.SeqKey(uint64(first + i))
			if err := notes.Put(key, v); err != nil {
				return err
			}
			if err := ids.Put([]byte(n.ID), key); err != nil {
				return err
			}
		}
		c.pending, c.pendingIDs = nil, nil
	}
	// The notes just stored are found there by the next Apply in this
	// transaction, even for a case that was not loaded from it.
	c.storedNote = noteStored(b)
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("case %s: encode: %w", c.ID, err)
	}
	if err := b.Put(keyCase, v); err != nil {
		return err
	}
	if _, err := indexShortID(tx, c.ID, KindCase); err != nil { // lookup.go
		return err
	}
	if err := indexLinks(tx, c); err != nil {
		return err
	}
	if err := countCase(tx, b, c); err != nil { // counts.go
		return err
	}
	if err := indexAdvisory(tx, c); err != nil { // advisories.go
		return err
	}
	if err := indexDates(tx, c); err != nil { // dates.go
		return err
	}
	if err := indexVulnerabilityIDs(tx, b, c); err != nil { // vulnids.go
		return err
	}
	if err := indexParticipants(b, c); err != nil { // participants.go
		return err
	}
	if c.clocksHeld {
		return nil
	}
	return indexCaseClocks(tx, c) // deadlines.go
}

// indexLinks writes the relations of c to other cases into the index of
// case relations, from both ends. It rewrites what is there: a case has at
// most maxLinks relations.
func indexLinks(tx *store.Tx, c *Case) error {
	if len(c.Links) == 0 {
		return nil
	}
	idx, err := tx.Case(caseLinks)
	if err != nil {
		return err
	}
	for _, l := range c.Links {
		if err := idx.Put([]byte(c.ID+"\n"+l.Case), []byte(l.Relation)); err != nil {
			return err
		}
		if err := idx.Put([]byte(l.Case+"\n"+c.ID), []byte(l.Relation.inverse())); err != nil {
			return err
		}
	}
	return nil
}

// maxRelated bounds the related cases Related returns: any number of
// cases may name one as their parent.
const maxRelated = 200

// Related returns the cases related to case id, from both ends: those it
// names as parent, child or sibling and those that name it, with the
// relation each has to it, in the order of their ids, at most maxRelated.
func Related(tx *store.ReadTx, id string) ([]CaseLink, error) {
	idx, err := tx.Case(caseLinks)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CaseLink
	errEnough := errors.New("enough")
	err = idx.RangePrefix([]byte(id+"\n"), func(k, v []byte) error {
		if len(out) == maxRelated {
			return errEnough
		}
		out = append(out, CaseLink{Relation: Relation(v), Case: string(k[len(id)+1:])})
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return out, err
}

// Save stores a case folded outside the engine (such as a benchmark's
// case) in the layout the engine keeps: its record and every note not
// stored yet. The ledger and the replica state are the caller's.
func Save(tx *store.Tx, c *Case) error { return saveCase(tx, c) }

// Notes returns the notes of a case from position from on, in the order
// they were added, at most limit of them (all when limit ≤ 0); none when
// this node has no such case.
func Notes(tx *store.ReadTx, caseID string, from, limit int) ([]Note, error) {
	c, err := loadCase(tx, caseID)
	if err != nil || c == nil {
		return nil, err
	}
	return c.NotesPage(tx, from, limit)
}

// NotesPage returns c's notes from position from on, at most limit of
// them (all when limit ≤ 0): first those stored under notes/, read in tx,
// then those not stored yet (all of them in a record written before
// notes/, which loadCase reads as pending). c may have been loaded in
// another transaction.
func (c *Case) NotesPage(tx *store.ReadTx, from, limit int) ([]Note, error) {
	from = max(from, 0)
	stored := c.NoteCount - len(c.pending)
	var out []Note
	full := func() bool { return limit > 0 && len(out) >= limit }
	if from < stored {
		b, err := tx.Case(c.ID)
		if err != nil {
			return nil, fmt.Errorf("case %s: notes: %w", c.ID, err)
		}
		notes, err := b.Bucket(bucketNotes)
		if err != nil {
			return nil, fmt.Errorf("case %s: notes: %w", c.ID, err)
		}
		errEnough := errors.New("enough")
		err = notes.RangeN(store.SeqKey(uint64(from)), limit+1, func(_, v []byte) error {
			if full() {
				return errEnough
			}
			var n Note
			if err := json.Unmarshal(v, &n); err != nil {
				return err
			}
			out = append(out, n)
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("case %s: notes: %w", c.ID, err)
		}
	}
	for i := max(from-stored, 0); i < len(c.pending) && !full(); i++ {
		out = append(out, c.pending[i])
	}
	return out, nil
}

// NoteIDs returns the ids of every note of c, in the order they were
// added (see NotesPage).
func (c *Case) NoteIDs(tx *store.ReadTx) ([]string, error) {
	notes, err := c.NotesPage(tx, 0, 0)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(notes))
	for i, n := range notes {
		ids[i] = n.ID
	}
	return ids, nil
}

// hostedBy returns the local name of the Case Actor when this node hosts
// the case, or "".
func hostedBy(tx *store.ReadTx, id string) string {
	b, err := tx.Case(id)
	if err != nil {
		return ""
	}
	return string(b.Get(keyHost))
}

// appendEntry stores a ledger entry and indexes its hash.
func appendEntry(tx *store.Tx, e ledger.Entry) error {
	b, err := tx.Case(e.CaseID)
	if err != nil {
		return err
	}
	raw, err := ledger.Marshal(e)
	if err != nil {
		return err
	}
	entries, err := b.Bucket("ledger")
	if err != nil {
		return err
	}
	if err := entries.Put(store.SeqKey(uint64(e.LogIndex)), raw); err != nil {
		return err
	}
	hashes, err := b.Bucket("hashes")
	if err != nil {
		return err
	}
	if err := hashes.Put([]byte(e.EntryHash), store.SeqKey(uint64(e.LogIndex))); err != nil {
		return err
	}
	idx, err := tx.Case(objectIndex)
	if err != nil {
		return err
	}
	var payload any
	if err := json.Unmarshal(e.PayloadSnapshot, &payload); err != nil {
		return fmt.Errorf("index entry %d of %s: %w", e.LogIndex, e.CaseID, err)
	}
	where := append(store.SeqKey(uint64(e.LogIndex)), e.CaseID...)
	for _, id := range objectIDs(payload, 0, nil) {
		if id == e.CaseID {
			continue
		}
		// An activity a ledger recorded stays indexed where it was
		// recorded when a later entry carries it inline (Recorded).
		if id != e.LogObjectID {
			if _, recorded := recordedAs(&tx.ReadTx, idx.Get([]byte(id)), id); recorded {
				continue
			}
		}
		if err := idx.Put([]byte(id), where); err != nil {
			return err
		}
	}
	return nil
}

// objectIDs lists the ids of the objects in a decoded JSON value: the
// activity and everything it carries inline (an embargo, a participant).
// A stub, an object written as its id and type only (what an activity
// acts on, as vocab.CarryAnswered sends it), is not listed: it says
// nothing of the object, which stays indexed where it was recorded.
func objectIDs(v any, depth int, out []string) []string {
	if depth > 8 {
		return out
	}
	switch v := v.(type) {
	case map[string]any:
		if id, ok := v["id"].(string); ok && id != "" && !isStub(v) {
			out = append(out, id)
		}
		for k, m := range v {
			if k != "id" {
				out = objectIDs(m, depth+1, out)
			}
		}
	case []any:
		for _, m := range v {
			out = objectIDs(m, depth+1, out)
		}
	}
	return out
}

// isStub reports whether a decoded JSON object holds nothing but its id,
// its type and a JSON-LD context.
func isStub(v map[string]any) bool {
	for k := range v {
		if k != "id" && k != "type" && k != "@context" {
			return false
		}
	}
	return true
}

// recordedObject returns, as a JSON document, the object with the given id
// from the ledger entry of the case that recorded it: the recorded activity
// itself, or an object it carried inline. Its error is a read of the
// store's that failed, not the absence of the object.
func recordedObject(tx *store.ReadTx, id string) ([]byte, bool, error) {
	idx, err := tx.Case(objectIndex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v := idx.Get([]byte(id))
	if len(v) <= 8 {
		return nil, false, nil
	}
	i, _ := store.KeySeq(v[:8])
	entries, err := Entries(tx, string(v[8:]), int64(i), 1)
	if err != nil {
		return nil, false, fmt.Errorf("the ledger entry that recorded %s: %w", id, err)
	}
	if len(entries) != 1 {
		return nil, false, nil
	}
	var payload any
	if err := json.Unmarshal(entries[0].PayloadSnapshot, &payload); err != nil {
		return nil, false, nil
	}
	obj := findObject(payload, id, 0)
	if obj == nil {
		return nil, false, nil
	}
	if _, ok := obj["@context"]; !ok {
		obj["@context"] = "https://www.w3.org/ns/activitystreams"
	}
	out, err := json.Marshal(obj)
	return out, err == nil, nil
}

// findObject returns the JSON object with the given id inside v.
func findObject(v any, id string, depth int) map[string]any {
	if depth > 8 {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		if v["id"] == id {
			return v
		}
		for _, m := range v {
			if o := findObject(m, id, depth+1); o != nil {
				return o
			}
		}
	case []any:
		for _, m := range v {
			if o := findObject(m, id, depth+1); o != nil {
				return o
			}
		}
	}
	return nil
}

// Entries returns the ledger entries of a case from index from on, at most
// limit of them (all when limit ≤ 0).
func Entries(tx *store.ReadTx, caseID string, from int64, limit int) ([]ledger.Entry, error) {
	b, err := tx.Case(caseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := b.Bucket("ledger")
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ledger.Entry
	errEnough := errors.New("enough")
	err = entries.RangeN(store.SeqKey(uint64(max(from, 0))), limit+1, func(_, v []byte) error {
		if limit > 0 && len(out) >= limit {
			return errEnough
		}
		e, err := ledger.Unmarshal(v)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("case %s: ledger: %w", caseID, err)
	}
	return out, nil
}

// indexOfHash returns the log index of the entry with the given hash.
func indexOfHash(tx *store.ReadTx, caseID, hash string) (int64, bool) {
	b, err := tx.Case(caseID)
	if err != nil {
		return 0, false
	}
	hashes, err := b.Bucket("hashes")
	if err != nil {
		return 0, false
	}
	v := hashes.Get([]byte(hash))
	if v == nil {
		return 0, false
	}
	i, ok := store.KeySeq(v)
	return int64(i), ok
}

func loadReplica(tx *store.ReadTx, caseID string) (*ledger.Replica, error) {
	b, err := tx.Case(caseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := b.Get(keyReplica)
	if v == nil {
		return nil, nil
	}
	var r ledger.Replica
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("case %s: decode replica state: %w", caseID, err)
	}
	return &r, nil
}

func saveReplica(tx *store.Tx, r *ledger.Replica) error {
	b, err := tx.Case(r.CaseID)
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("case %s: encode replica state: %w", r.CaseID, err)
	}
	return b.Put(keyReplica, v)
}

// setInvited records that local actor name accepted an invitation to the
// case from its Case Actor; entries that Case Actor announces for the case
// are then trusted.
func setInvited(tx *store.Tx, caseID, name, caseActor string) error {
	b, err := tx.Case(caseID)
	if err != nil {
		return err
	}
	inv, err := b.Bucket("invited")
	if err != nil {
		return err
	}
	return inv.Put([]byte(name), []byte(caseActor))
}

// invitedBy returns the Case Actor that invited local actor name to the
// case, or "".
func invitedBy(tx *store.ReadTx, caseID, name string) string {
	b, err := tx.Case(caseID)
	if err != nil {
		return ""
	}
	inv, err := b.Bucket("invited")
	if err != nil {
		return ""
	}
	return string(inv.Get([]byte(name)))
}

// listReadAhead is what a page of cases reads of each (its record, whether
// this node hosts it, its replica's sync state), read for the whole page at
// once where that saves round trips (store.ReadTx.ReadAheadCases).
var listReadAhead = [][]byte{keyCase, keyHost, keySync}

// ListCasesPage returns at most limit cases whose ids sort after after, in
// id order, and the cursor of the next page ("" on the last page). It takes
// the ids of a page first and reads the cases together, and it stops at the
// first bucket whose name sorts after every http(s) URL, so that the last
// page does not walk the buckets of every report the node keeps.
func ListCasesPage(tx *store.ReadTx, after string, limit int) ([]*Case, string, error) {
	var out []*Case
	for {
		var ids []string
		more := false
		// The page's names, one more to know whether there is a next
		// page, and the few index namespaces among them.
		expect := limit - len(out) + 1 + indexBuckets
		err := tx.CasesAfterN(after, expect, func(id string) (bool, error) {
			if id > afterEveryCase {
				return false, nil // reports and indexes only from here on
			}
			if isIndexBucket(id) {
				return true, nil
			}
			if len(ids) > limit-len(out) { // one more than the page needs
				more = true
				return false, nil
			}
			ids = append(ids, id)
			return true, nil
		})
		if err != nil {
			return nil, "", err
		}
		tx.ReadAheadCases(ids, listReadAhead...)
		for _, id := range ids {
			c, err := loadCase(tx, id)
			if err != nil {
				return nil, "", err
			}
			if c == nil || c.ID == "" {
				continue // a replica with no record yet
			}
			if len(out) == limit {
				return out, out[len(out)-1].ID, nil // at least one more case
			}
			out = append(out, c)
		}
		if !more {
			return out, "", nil
		}
		after = ids[len(ids)-1]
	}
}

// afterEveryCase sorts after every http(s) URL, so after every case id, and
// before the names of reports' buckets ("report …") and of the indexes that
// sort after the cases.
const afterEveryCase = "https:/\xff"

// indexBuckets is a bound on the package's index namespaces that a walk of
// the case names may meet (fewer than twenty today): a page's reads expect
// that many more names than it shows.
const indexBuckets = 24

// isIndexBucket reports whether a case bucket's name is that of one of the
// package's indexes rather than of a case.
func isIndexBucket(name string) bool {
	// Every case bucket is named by the case's id, an http(s) URL; the
	// indexes and markers kept among them are named by phrases, and the
	// records of reports by "report " and the report's id.
	return !strings.HasPrefix(name, "https://") && !strings.HasPrefix(name, "http://")
}

// Load returns the case with the given id, or nil.
func Load(tx *store.ReadTx, id string) (*Case, error) { return loadCase(tx, id) }

// Hosted reports whether this node hosts the case (its Case Actor is
// local).
func Hosted(tx *store.ReadTx, id string) bool { return hostedBy(tx, id) != "" }

// MigrateNotes moves the notes of every case whose record still holds
// them (records written before notes/ and noteids/) into those buckets,
// one transaction per case, and then marks the store so that later calls
// return at once. It returns how many cases it moved.
func MigrateNotes(ctx context.Context, db *store.DB) (int, error) {
	var legacy []string
	done := false
	err := db.View(ctx, func(tx *store.ReadTx) error {
		if _, err := tx.Case(notesMigrated); err == nil {
			done = true
			return nil
		}
		return tx.Cases(func(id string) error {
			c, err := loadCase(tx, id)
			if err != nil {
				return err
			}
			if c != nil && len(c.pending) > 0 {
				legacy = append(legacy, id)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("migrate case notes: %w", err)
	}
	if done {
		return 0, nil
	}
	for _, id := range legacy {
		err := db.Update(ctx, func(tx *store.Tx) error {
			c, err := loadCase(&tx.ReadTx, id)
			if err != nil || c == nil || len(c.pending) == 0 {
				return err
			}
			return saveCase(tx, c)
		})
		if err != nil {
			return 0, fmt.Errorf("migrate the notes of case %s: %w", id, err)
		}
	}
	err = db.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Case(notesMigrated)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("migrate case notes: %w", err)
	}
	return len(legacy), nil
}
