package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// openStore opens a new store for a test and closes it when the test ends.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// addNoteTo adds the note with the given id to c, by the finder.
func addNoteTo(t *testing.T, c *Case, id string) {
	t.Helper()
	must(t, c, vocab.AddNoteToCase, act(t, "Add", finder,
		fmt.Sprintf(`"object":{"id":%q,"type":"Note","content":"about %s"},"target":%q`, id, id, caseID)))
}

func noteID(i int) string { return fmt.Sprintf("https://f.example/notes/%d", i) }

// update runs fn in a write transaction and fails the test on an error.
func update(t *testing.T, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// storedNotes returns Notes(caseID, from, limit) as note ids.
func storedNotes(t *testing.T, db *store.DB, from, limit int) []string {
	t.Helper()
	var ids []string
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		notes, err := Notes(tx, caseID, from, limit)
		for _, n := range notes {
			ids = append(ids, n.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// addNotes adds the notes noteID(from) … noteID(to-1) to c.
func addNotes(t *testing.T, c *Case, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		addNoteTo(t, c, noteID(i))
	}
}

// TestNotesStoredApart checks that saveCase stores each note under notes/
// and its id under noteids/, and a record that counts the notes without
// holding them.
func TestNotesStoredApart(t *testing.T) {
	db := openStore(t)
	c := newCase(t, false)
	addNotes(t, c, 0, 3)
	update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
	if len(c.PendingNotes()) != 0 || c.NoteCount != 3 {
		t.Fatalf("after saving: %d pending, count %d; want 0 and 3", len(c.PendingNotes()), c.NoteCount)
	}
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(b.Get(keyCase), &rec); err != nil {
			return err
		}
		if _, ok := rec["notes"]; ok || rec["noteCount"] != 3.0 {
			t.Errorf("record holds notes %v, noteCount %v; want no notes and 3", rec["notes"], rec["noteCount"])
		}
		notes, err := b.Bucket(bucketNotes)
		if err != nil {
			return err
		}
		ids, err := b.Bucket(bucketNoteIDs)
		if err != nil {
			return err
		}
		for i := range 3 {
			var n Note
			if err := json.Unmarshal(notes.Get(store.SeqKey(uint64(i))), &n); err != nil || n.ID != noteID(i) || n.Author != finder {
				t.Errorf("notes/%d = %+v (%v), want %s by the finder", i, n, err, noteID(i))
			}
			if pos := ids.Get([]byte(noteID(i))); string(pos) != string(store.SeqKey(uint64(i))) {
				t.Errorf("noteids/%s = %x, want position %d", noteID(i), pos, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateNoteRefused adds a note again, while the first is pending
// and once it is stored by an earlier transaction: the case keeps one.
func TestDuplicateNoteRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stored bool // the first note is saved in its own transaction
	}{
		{"pending", false},
		{"stored", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openStore(t)
			c := newCase(t, false)
			addNoteTo(t, c, noteID(0))
			if tt.stored {
				update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
			}
			update(t, db, func(tx *store.Tx) error {
				if tt.stored {
					var err error
					if c, err = loadCase(&tx.ReadTx, caseID); err != nil {
						return err
					}
				}
				addNoteTo(t, c, noteID(0))
				addNoteTo(t, c, noteID(1))
				return saveCase(tx, c)
			})
			if got := storedNotes(t, db, 0, 0); c.NoteCount != 2 || !slices.Equal(got, []string{noteID(0), noteID(1)}) {
				t.Errorf("count %d, notes %v; want 2: %s and %s", c.NoteCount, got, noteID(0), noteID(1))
			}
		})
	}
}

// TestNotesPaging reads pages of a case's notes, in the order they were
// added, across notes saved by two transactions.
func TestNotesPaging(t *testing.T) {
	db := openStore(t)
	c := newCase(t, false)
	addNotes(t, c, 0, 3)
	update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
	addNotes(t, c, 3, 5)
	update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
	for _, tt := range []struct {
		from, limit int
		want        []int
	}{
		{0, 0, []int{0, 1, 2, 3, 4}},
		{0, 2, []int{0, 1}},
		{2, 2, []int{2, 3}},
		{3, 0, []int{3, 4}},
		{4, 5, []int{4}},
		{-2, 1, []int{0}},
		{5, 1, nil},
	} {
		var want []string
		for _, i := range tt.want {
			want = append(want, noteID(i))
		}
		if got := storedNotes(t, db, tt.from, tt.limit); !slices.Equal(got, want) {
			t.Errorf("Notes(from %d, limit %d) = %v, want %v", tt.from, tt.limit, got, want)
		}
	}
}

// TestCloneNotes checks that a clone adds notes without changing the case
// it was cloned from, and the other way round, and that it refuses a note
// stored already as the case does.
func TestCloneNotes(t *testing.T) {
	db := openStore(t)
	c := newCase(t, false)
	addNoteTo(t, c, noteID(0))
	update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
	update(t, db, func(tx *store.Tx) error {
		loaded, err := loadCase(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		addNoteTo(t, loaded, noteID(1))
		work := loaded.clone()
		addNoteTo(t, work, noteID(0)) // stored: refused
		addNoteTo(t, work, noteID(2))
		addNoteTo(t, loaded, noteID(3))
		pending := func(c *Case) []string {
			var ids []string
			for _, n := range c.PendingNotes() {
				ids = append(ids, n.ID)
			}
			return ids
		}
		if got := pending(loaded); loaded.NoteCount != 3 || !slices.Equal(got, []string{noteID(1), noteID(3)}) {
			t.Errorf("case: count %d, pending %v; want 3 with %s and %s", loaded.NoteCount, got, noteID(1), noteID(3))
		}
		if got := pending(work); work.NoteCount != 3 || !slices.Equal(got, []string{noteID(1), noteID(2)}) {
			t.Errorf("clone: count %d, pending %v; want 3 with %s and %s", work.NoteCount, got, noteID(1), noteID(2))
		}
		return nil
	})
}

// TestMigrateNotes writes a case record as nodes did before notes/ (the
// notes in the record), reads its notes, migrates the store and reads them
// again from notes/.
func TestMigrateNotes(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	c := newCase(t, false)
	addNotes(t, c, 0, 3)
	update(t, db, func(tx *store.Tx) error {
		legacy, err := json.Marshal(storedRecord{Case: *c, Notes: c.PendingNotes()})
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(legacy, &rec); err != nil {
			return err
		}
		delete(rec, "noteCount")
		if legacy, err = json.Marshal(rec); err != nil {
			return err
		}
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		return b.Put(keyCase, legacy)
	})
	all := []string{noteID(0), noteID(1), noteID(2)}
	if got := storedNotes(t, db, 1, 1); !slices.Equal(got, all[1:2]) {
		t.Errorf("before migrating: Notes(1, 1) = %v, want %v", got, all[1:2])
	}
	for _, want := range []int{1, 0} {
		moved, err := MigrateNotes(ctx, db)
		if err != nil || moved != want {
			t.Fatalf("MigrateNotes moved %d (%v), want %d", moved, err, want)
		}
	}
	if got := storedNotes(t, db, 0, 0); !slices.Equal(got, all) {
		t.Errorf("after migrating: notes %v, want %v", got, all)
	}
	update(t, db, func(tx *store.Tx) error {
		loaded, err := loadCase(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		if loaded.NoteCount != 3 || len(loaded.PendingNotes()) != 0 {
			t.Errorf("migrated case: count %d, %d pending; want 3 and 0", loaded.NoteCount, len(loaded.PendingNotes()))
		}
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(b.Get(keyCase), &rec); err != nil {
			return err
		}
		if _, ok := rec["notes"]; ok {
			t.Errorf("the migrated record still holds its notes")
		}
		addNoteTo(t, loaded, noteID(2)) // stored by the migration: refused
		addNoteTo(t, loaded, noteID(3))
		return saveCase(tx, loaded)
	})
	if got := storedNotes(t, db, 0, 0); !slices.Equal(got, append(all, noteID(3))) {
		t.Errorf("after one more note: %v, want %v", got, append(all, noteID(3)))
	}
}
