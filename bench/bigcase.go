package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// BigCase is a case ledger built for the benchmarks, entry by entry as a
// Case Actor writes it: the first entry records the case's creation by its
// owner (a coordinator) with the finder, built like cases' createCase does;
// then every other participant (a vendor) joins as the protocol has it, by
// the owner's invitation and the vendor's acceptance (two entries each);
// every later entry records a note added by one of the participants in
// turn. Entries are sealed with ledger.NewEntry, so their hashes chain.
type BigCase struct {
	CaseID    string
	ActorID   string
	Published time.Time
	Genesis   string
	Entries   []ledger.Entry
}

// BuildCase builds a case with the given number of participants (at least
// 2) and ledger entries (at least 2*participants-3, the creation and the
// joins) on a node at base, such as http://127.0.0.1:7001; tag makes its
// ids unique.
func BuildCase(base, tag string, participants, entries int) (*BigCase, error) {
	if participants < 2 || entries < 2*participants-3 {
		return nil, fmt.Errorf("build case: need at least 2 participants and 2*participants-3 entries, got %d and %d", participants, entries)
	}
	caseID := base + "/cases/" + tag
	actorID := base + "/actors/case-" + tag
	published := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	bc := &BigCase{CaseID: caseID, ActorID: actorID, Published: published, Genesis: ledger.GenesisHash(caseID, published, actorID)}
	members := make([]string, participants)
	members[0] = base + "/actors/coordinator"
	members[1] = "http://127.0.0.1:7002/actors/finder"
	for i := 2; i < participants; i++ {
		members[i] = fmt.Sprintf("http://127.0.0.1:%d/actors/vendor%d", 10000+i%50000, i)
	}
	participant := func(actor string, roles cvdstate.RoleSet, rm, vfd string) vocab.Ref {
		cp := &vocab.CaseParticipant{}
		cp.ID, cp.Type = cases.ParticipantID(caseID, actor), vocab.TypeCaseParticipant
		cp.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(actor)}, Single: true}
		cp.Context = vocab.RefTo(caseID)
		for _, r := range cvdstate.Roles() {
			if roles.Has(r) {
				cp.CaseRoles = append(cp.CaseRoles, r.String())
			}
		}
		cp.EmbargoConsentState = "NO_EMBARGO"
		st := &vocab.ParticipantStatus{RMState: rm, VFDState: vfd}
		st.Type = vocab.TypeParticipantStatus
		st.Context = vocab.RefTo(cp.ID)
		cp.ParticipantStatuses = []vocab.Ref{vocab.Inline(st)}
		return vocab.Inline(cp)
	}
	vc := &vocab.VulnerabilityCase{}
	vc.ID, vc.Type = caseID, vocab.TypeVulnerabilityCase
	vc.Name = "Remote code execution in a widely used logging library"
	vc.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(members[0])}, Single: true}
	vc.Published = published.Format(time.RFC3339)
	vc.VulnerabilityReports = []vocab.Ref{vocab.RefTo(members[1] + "/reports/1")}
	vc.CaseParticipants = append(vc.CaseParticipants,
		participant(members[0], cvdstate.Coordinator|cvdstate.CaseOwner, "RECEIVED", "vfd"),
		participant(members[1], cvdstate.Finder|cvdstate.Reporter, "ACCEPTED", "vfd"))
	status := &vocab.CaseStatus{EMState: "NONE", PXAState: "pxa"}
	status.Type = vocab.TypeCaseStatus
	status.Context = vocab.RefTo(caseID)
	vc.CaseStatuses = []vocab.Ref{vocab.Inline(status)}
	vc.GenesisHash = bc.Genesis
	create := vocab.CaseCreation(actorID, vc, published)
	payload, err := vocab.Marshal(create)
	if err != nil {
		return nil, fmt.Errorf("build case: encode creation: %w", err)
	}
	e, err := ledger.NewEntry(caseID, 0, bc.Genesis, create.ID, cases.EventType(vocab.CreateCase), payload, published)
	if err != nil {
		return nil, fmt.Errorf("build case: %w", err)
	}
	bc.Entries = append(bc.Entries, e)
	add := func(i int, id, eventType string, payload []byte, at time.Time) error {
		e, err := ledger.NewEntry(caseID, int64(i), bc.Entries[i-1].EntryHash, id, eventType, payload, at)
		if err != nil {
			return fmt.Errorf("build case: entry %d: %w", i, err)
		}
		bc.Entries = append(bc.Entries, e)
		return nil
	}
	i := 1
	for _, m := range members[2:] {
		at := published.Add(time.Duration(i) * time.Second)
		inviteID := fmt.Sprintf("%s/activities/invite-%d", caseID, i)
		invite, err := json.Marshal(map[string]any{
			"@context": vocab.VultronContext, "id": inviteID, "type": "Invite", "actor": members[0],
			"to": []string{actorID}, "context": caseID, "target": caseID, "published": at.Format(time.RFC3339),
			"object": m, "roles": []string{"vendor"},
		})
		if err != nil {
			return nil, err
		}
		if err := add(i, inviteID, cases.EventType(vocab.InviteActorToCase), invite, at); err != nil {
			return nil, err
		}
		i++
		acceptID := fmt.Sprintf("%s/activities/accept-%d", m, i)
		accept, err := json.Marshal(map[string]any{
			"@context": vocab.VultronContext, "id": acceptID, "type": "Accept", "actor": m,
			"to": []string{actorID}, "context": caseID, "published": at.Format(time.RFC3339),
			"object": inviteID,
		})
		if err != nil {
			return nil, err
		}
		if err := add(i, acceptID, cases.EventType(vocab.AcceptInviteActorToCase), accept, at); err != nil {
			return nil, err
		}
		i++
	}
	for ; i < entries; i++ {
		author := members[i%participants]
		at := published.Add(time.Duration(i) * time.Second)
		id := fmt.Sprintf("%s/activities/note-%d", caseID, i)
		payload, err := json.Marshal(map[string]any{
			"@context": vocab.VultronContext, "id": id, "type": "Add", "actor": author,
			"to": []string{actorID}, "context": caseID, "target": caseID, "published": at.Format(time.RFC3339),
			"object": map[string]any{"id": fmt.Sprintf("%s/notes/%d", caseID, i), "type": "Note", "attributedTo": author,
				"content":   fmt.Sprintf("Status of product %d: the fix is in review and the advisory draft is ready for the coordinator.", i),
				"published": at.Format(time.RFC3339)},
		})
		if err != nil {
			return nil, err
		}
		if err := add(i, id, cases.EventType(vocab.AddNoteToCase), payload, at); err != nil {
			return nil, err
		}
	}
	return bc, nil
}

// Apply applies the whole ledger to an empty replica, as a participant's
// node does when it joins: each entry is offered to a ledger.Replica (which
// recomputes its hash and checks the chain) and folded into the case with
// cases.Case.Apply after its payload is parsed (what cases' applyEntry
// does). It returns the folded case and an error when any entry was refused
// or diverged.
func (bc *BigCase) Apply() (*cases.Case, *ledger.Replica, error) {
	r := &ledger.Replica{CaseID: bc.CaseID, Genesis: bc.Genesis, Tail: bc.Genesis}
	c := &cases.Case{}
	for _, e := range bc.Entries {
		res, err := r.Offer(e)
		if err != nil || res != ledger.Applied {
			return nil, nil, fmt.Errorf("entry %d: %v %v", e.LogIndex, res, err)
		}
		doc, err := vocab.Parse(e.PayloadSnapshot)
		if err != nil || doc.Activity() == nil {
			return nil, nil, fmt.Errorf("entry %d: parse payload: %v", e.LogIndex, err)
		}
		at, _ := time.Parse(time.RFC3339Nano, e.ReceivedAt)
		if _, err := c.Apply(e.EventType, doc.Activity(), at); err != nil {
			return nil, nil, fmt.Errorf("entry %d (%s): %w", e.LogIndex, e.EventType, err)
		}
		c.LedgerLen, c.TailHash = e.LogIndex+1, e.EntryHash
	}
	return c, r, nil
}

// Verify checks the whole hash chain (ledger.Verify).
func (bc *BigCase) Verify() error { return ledger.Verify(bc.Entries, bc.Genesis) }

// Store writes the case into a node's store as a replica, in the layout the
// cases package keeps (the folded case under "case" and its notes under
// notes/ and noteids/, written by cases.Save; the replica state under
// "replica", ledger/ by log index and hashes/ by entry hash); the index of
// recorded objects is not written, since nothing measured reads it.
// Entries are written in transactions of at most 5,000; c's notes are
// stored with the last of them, after which c holds none pending.
func (bc *BigCase) Store(ctx context.Context, db *store.DB, c *cases.Case, r *ledger.Replica) error {
	repJSON, err := json.Marshal(r)
	if err != nil {
		return err
	}
	raws := make([][]byte, len(bc.Entries))
	for i, e := range bc.Entries {
		if raws[i], err = ledger.Marshal(e); err != nil {
			return err
		}
	}
	const chunk = 5000
	for from := 0; from < len(raws); from += chunk {
		to := min(from+chunk, len(raws))
		err := db.Update(ctx, func(tx *store.Tx) error {
			b, err := tx.Case(bc.CaseID)
			if err != nil {
				return err
			}
			led, err := b.Bucket("ledger")
			if err != nil {
				return err
			}
			hashes, err := b.Bucket("hashes")
			if err != nil {
				return err
			}
			for i := from; i < to; i++ {
				if err := led.Put(store.SeqKey(uint64(i)), raws[i]); err != nil {
					return err
				}
				if err := hashes.Put([]byte(bc.Entries[i].EntryHash), store.SeqKey(uint64(i))); err != nil {
					return err
				}
			}
			if to == len(raws) {
				if err := cases.Save(tx, c); err != nil {
					return err
				}
				return b.Put([]byte("replica"), repJSON)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store case %s: %w", bc.CaseID, err)
		}
	}
	return nil
}

// StoreManyCases writes n small open cases (participants participants,
// entries entries each) into db, as a node that took part in them keeps
// them, from 32 goroutines whose writes the store's group committer
// merges into few commits.
func StoreManyCases(ctx context.Context, db *store.DB, base string, n, participants, entries int) error {
	return StoreCases(ctx, db, base, 0, n, participants, entries)
}

// StoreCases stores the cases numbered from to to (exclusive) as
// StoreManyCases does, so that a store can be grown in steps.
func StoreCases(ctx context.Context, db *store.DB, base string, from, to, participants, entries int) error {
	n := to
	// Cases are built in batches and written from several goroutines at
	// once: the store's group committer merges their writes into few
	// commits, which is what makes seeding 100,000 cases quick.
	const perBatch, writers = 500, 32
	for ; from < n; from += perBatch {
		type one struct {
			bc *BigCase
			c  *cases.Case
			r  *ledger.Replica
		}
		var batch []one
		for i := from; i < min(from+perBatch, n); i++ {
			bc, err := BuildCase(base, fmt.Sprintf("c%06d", i), participants, entries)
			if err != nil {
				return err
			}
			c, r, err := bc.Apply()
			if err != nil {
				return err
			}
			batch = append(batch, one{bc, c, r})
		}
		var next atomic.Int64
		errs := make(chan error, writers)
		for range writers {
			go func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(len(batch)) {
						errs <- nil
						return
					}
					o := batch[i]
					if err := o.bc.Store(ctx, db, o.c, o.r); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		var first error
		for range writers {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
	}
	return nil
}

// RecordCost measures what a replica does to its stored case for one more
// announced entry (cases.Load, Apply of one note, cases.Save, in a store
// transaction; the commit is not counted) on db, which holds bc's case
// with notes notes: the best of three rounds, each adding the case's last
// note again under a new id.
func RecordCost(ctx context.Context, db *store.DB, bc *BigCase, notes int) (time.Duration, error) {
	// The last entry adds a note; each round adds it again under a new id.
	last := bc.Entries[len(bc.Entries)-1]
	doc, err := vocab.Parse(last.PayloadSnapshot)
	if err != nil || doc.Activity() == nil {
		return 0, fmt.Errorf("parse entry %d: %v", last.LogIndex, err)
	}
	act := doc.Activity()
	note, ok := act.Object.Object.(*vocab.GenericObject)
	if !ok {
		return 0, fmt.Errorf("entry %d adds no note", last.LogIndex)
	}
	best := time.Duration(-1)
	for round := range 3 {
		note.ID = fmt.Sprintf("%s/notes/again-%d", bc.CaseID, round)
		err := db.Update(ctx, func(tx *store.Tx) error {
			t0 := time.Now()
			stored, err := cases.Load(&tx.ReadTx, bc.CaseID)
			if err != nil {
				return err
			}
			if _, err := stored.Apply(last.EventType, act, time.Now()); err != nil {
				return err
			}
			if err := cases.Save(tx, stored); err != nil {
				return err
			}
			if t := time.Since(t0); best < 0 || t < best {
				best = t
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("add a note to case %s: %w", bc.CaseID, err)
		}
	}
	// Each round must have stored its note, or it measured less.
	var added []cases.Note
	err = db.View(ctx, func(tx *store.ReadTx) error {
		var err error
		added, err = cases.Notes(tx, bc.CaseID, notes, 0)
		return err
	})
	if err != nil || len(added) != 3 {
		return 0, fmt.Errorf("case %s: %d notes added in three rounds (%v)", bc.CaseID, len(added), err)
	}
	return best, nil
}
