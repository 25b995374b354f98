package cases

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// entryOf returns the ledger entry an Announce(CaseLedgerEntry) carries.
func entryOf(act *vocab.Activity) (ledger.Entry, error) {
	obj, ok := act.Object.Object.(*vocab.CaseLedgerEntry)
	if !ok || obj.LogIndex == nil {
		return ledger.Entry{}, problem.Unprocessable("the announcement %s does not carry an inline CaseLedgerEntry with a logIndex", act.ID)
	}
	payload, err := json.Marshal(obj.PayloadSnapshot)
	if err != nil {
		return ledger.Entry{}, problem.Unprocessable("the payload of the ledger entry in %s cannot be read: %v", act.ID, err)
	}
	raw, err := ledger.Marshal(ledger.Entry{
		CaseID: obj.CaseID, LogIndex: *obj.LogIndex, Disposition: obj.Disposition, Term: obj.Term,
		LogObjectID: obj.LogObjectID, EventType: obj.EventType, PayloadSnapshot: payload,
		PrevLogHash: obj.PrevLogHash, EntryHash: obj.EntryHash, ReceivedAt: obj.ReceivedAt,
		ReasonCode: obj.ReasonCode, ReasonDetail: obj.ReasonDetail,
	})
	if err != nil {
		return ledger.Entry{}, problem.Unprocessable("the ledger entry in %s is malformed: %v", act.ID, err)
	}
	// Unmarshal validates what the entry holds.
	e, err := ledger.Unmarshal(raw)
	if err != nil {
		return ledger.Entry{}, problem.Unprocessable("the ledger entry in %s is malformed: %v", act.ID, err)
	}
	return e, nil
}

// receiveEntry takes an entry a Case Actor announced to local actor to.
func (e *Engine) receiveEntry(tx *store.Tx, to LocalActor, sender string, m Message, now time.Time) error {
	entry, err := entryOf(m.Activity)
	if err != nil {
		return err
	}
	return e.offerEntries(tx, to.Name, sender, []ledger.Entry{entry}, now, true)
}

// offerEntries applies entries of one case's ledger, from its Case Actor
// sender, to this node's replica of the case, in one transaction: entries
// announced to local actor local (announced), or a page fetched for it.
// An entry past the next one is not kept: the replica is then behind, and
// its check is due at once (see sync.go). An announced entry that does not
// chain makes the replica suspect a fork and check at once; a fetched one
// that does not chain is a fork.
func (e *Engine) offerEntries(tx *store.Tx, local, sender string, entries []ledger.Entry, now time.Time, announced bool) error {
	if len(entries) == 0 {
		return nil
	}
	caseID := entries[0].CaseID
	if hostedBy(&tx.ReadTx, caseID) != "" {
		// This node writes the ledger of that case; an announcement of it
		// is an echo of its own entry.
		return nil
	}
	c, err := loadCase(&tx.ReadTx, caseID)
	if err != nil {
		return err
	}
	if c != nil && c.CaseActor != "" && c.CaseActor != sender {
		return problem.Forbidden("%s is not the Case Actor of case %s (%s is)", sender, caseID, c.CaseActor)
	}
	r, held, v, err := loadReplicaView(&tx.ReadTx, caseID)
	if err != nil {
		return err
	}
	if v.s != nil && v.s.CaseActor != "" && v.s.CaseActor != sender {
		return problem.Forbidden("%s is not the Case Actor of case %s (%s is)", sender, caseID, v.s.CaseActor)
	}
	if v.s != nil && (v.s.Fork != nil || v.s.Rebuild) && announced {
		// A forked replica applies nothing until an operator acts, and one
		// being rebuilt nothing but the Case Actor's ledger from its
		// start; the announcement is kept in the inbox.
		return nil
	}
	if v.s == nil {
		v.s = &SyncState{Local: local, CaseActor: sender, Known: held}
	}
	if v.s.CaseActor == "" && urlhost.Same(sender, caseID) {
		// A case the node looked for before any announcement of it (its
		// report's validation named it): the Case Actor is known now.
		// The first entry it sends must still be the case's creation by
		// it, and one this node may trust (trustGenesis).
		v.s.CaseActor = sender
	}
	applied := false
	reportsBefore := 0
	if c != nil {
		reportsBefore = len(c.Reports)
	}
	for _, entry := range entries {
		if entry.CaseID != caseID {
			return problem.Unprocessable("ledger entry %d is of case %s, not %s", entry.LogIndex, entry.CaseID, caseID)
		}
		if r == nil {
			if entry.LogIndex != 0 {
				// Without the first entry there is no genesis to chain
				// from: fetch the ledger from its start.
				if !e.mayFollow(&tx.ReadTx, local, sender, caseID) {
					return problem.Forbidden("%s announces case %s, which %s has not joined", sender, caseID, local)
				}
				if v.s.Failures > 0 {
					// The checks of a replica not started yet failed (the
					// Case Actor had not recorded the joining, or was
					// down); an announcement says it now serves this
					// node: fetch at once, not after the back-off.
					v.s.Failures, v.s.NextCheck = 0, now
				}
				e.learn(v, entry.LogIndex+1, 0, now)
				continue
			}
			genesis, err := e.trustGenesis(tx, local, sender, entry)
			if err != nil {
				return err
			}
			r = &ledger.Replica{CaseID: caseID, Genesis: genesis}
			c = &Case{}
		}
		res, err := r.Offer(entry)
		switch res {
		case ledger.Refused:
			return problem.Unprocessable("ledger entry %d of case %s: %v", entry.LogIndex, caseID, err)
		case ledger.Ahead:
			if announced && local == v.s.Local && e.removesLocal(c, local, entry) {
				// The announcement of this node's actor's own removal, past
				// entries this copy lacks: the Case Actor withdrew them when
				// it removed the actor (Withdrawn) and serves its ledger to
				// it no more, so nothing is to be fetched. The copy stops
				// here, as at a removal it applies (idleChecks). The
				// removal of another actor of this node does not stop it:
				// the one it follows the case as is served still.
				v.s.NextCheck, v.s.Failures, v.s.LastError, v.s.BehindSince = time.Time{}, 0, "", time.Time{}
				v.s.Known = r.Next
				continue
			}
			e.learn(v, entry.LogIndex+1, r.Next, now)
		case ledger.Duplicate:
			if i, ok := indexOfHash(&tx.ReadTx, caseID, entry.EntryHash); entry.LogIndex < r.Next-1 && (!ok || i != entry.LogIndex) {
				err = &ledger.MismatchError{CaseID: caseID, Index: entry.LogIndex, Tail: r.TailHash(),
					Reason: fmt.Sprintf("entryHash %s differs from the entry held at that index", entry.EntryHash)}
				e.mismatched(v, err, entry.LogIndex, announced, now)
			}
		case ledger.Mismatch:
			at := entry.LogIndex
			if entry.LogIndex == r.Next && entry.PrevLogHash != r.TailHash() {
				// It names another entry before it than the replica's
				// last: the ledgers differ there already.
				at = max(r.Next-1, 0)
			}
			e.mismatched(v, err, at, announced, now)
		case ledger.Applied:
			actor := e.applyEntry(c, entry)
			if err := appendEntry(tx, entry); err != nil {
				return err
			}
			if !v.s.Emitted || !wasEmitted(&tx.ReadTx, caseID, entry) {
				if err := recordEvent(tx, c, entry, actor); err != nil {
					return err
				}
			}
			applied = true
		}
		if v.s.Fork != nil {
			break
		}
	}
	if r == nil {
		return v.save(tx, 0)
	}
	if applied {
		// A rebuilt copy short of the Case Actor's tail leaves the clocks
		// as they were (SyncState.ClocksHeld); the save that reaches it
		// makes them follow the copy.
		c.clocksHeld = v.s.ClocksHeld && v.s.behind(r.Next)
		v.s.ClocksHeld = c.clocksHeld
		if err := saveCase(tx, c); err != nil {
			return err
		}
		if err := saveReplica(tx, r); err != nil {
			return err
		}
		if err := linkReports(tx, v.s.Local, caseID, c.Reports[min(reportsBefore, len(c.Reports)):]); err != nil {
			return err
		}
		e.settled(v, c, r.Next, now)
	}
	return v.save(tx, r.Next)
}

// wasEmitted reports whether the change feed announced entry before a
// rebuild replaced the replica of caseID (bucketEmitted): the same entry
// hash at the same log index.
func wasEmitted(tx *store.ReadTx, caseID string, entry ledger.Entry) bool {
	b, err := tx.Case(caseID)
	if err != nil {
		return false
	}
	emitted, err := b.Bucket(bucketEmitted)
	if err != nil {
		return false
	}
	i, ok := store.KeySeq(emitted.Get([]byte(entry.EntryHash)))
	return ok && int64(i) == entry.LogIndex
}

// removesLocal reports whether entry of case c is the removal of local
// actor local from it, which names its actor or its CaseParticipant.
func (e *Engine) removesLocal(c *Case, local string, entry ledger.Entry) bool {
	if c == nil || entry.EventType != EventType(vocab.RemoveCaseParticipantFromCase) {
		return false
	}
	id := e.cfg.PublicURL + "/actors/" + local
	p := c.Participant(id)
	return p != nil && removes(entry, id, p.ID)
}

// linkReports records, in the local actor's own records of the reports
// with the given ids, that they belong to case caseID, as the Case
// Actor's ledger says: a reporter's node learns so of the case its report
// opened. A report already linked to a case keeps its link; one this
// actor has no record of is none of its business.
func linkReports(tx *store.Tx, local, caseID string, ids []string) error {
	for _, id := range ids {
		rec, found, err := readReport(&tx.ReadTx, id, local)
		if err != nil {
			return err
		}
		if !found || rec.CaseID != "" {
			continue
		}
		rec.CaseID = caseID
		if err := writeReport(tx, rec); err != nil {
			return err
		}
	}
	return nil
}

// mismatched records an entry that does not chain onto the replica, which
// shows the two ledgers differing from log index index: when announced, a
// suspicion the next check settles; when fetched from the Case Actor, a
// fork.
func (e *Engine) mismatched(v *replicaView, err error, index int64, announced bool, now time.Time) {
	if announced {
		e.suspect(v, err.Error(), now)
		return
	}
	v.s.Fork = &Fork{Index: index, Reason: err.Error(), Since: now}
	v.s.NextCheck = time.Time{}
}

// mayFollow reports whether local actor local may start a replica of case
// caseID from an entry past the first, announced by sender: it accepted an
// invitation from that Case Actor, or the case is on the Case Actor's own
// host, and the first entry, fetched next, decides (trustGenesis).
func (e *Engine) mayFollow(tx *store.ReadTx, local, sender, caseID string) bool {
	return invitedBy(tx, caseID, local) == sender || urlhost.Same(caseID, sender)
}

// applyEntry folds one verified entry into the replica's case. An entry
// the Case Actor recorded but this replica cannot apply means the two
// disagree on the rules: the replica keeps the ledger (the chain is what
// every participant agrees on) and records the disagreement, but for the
// rules this release added, where it follows the Case Actor
// (applyRecorded). It returns the actor of the entry's activity, "" if the
// payload has none. An entry that records the Case Actor's rejection of an
// activity extends the chain only: the activity changed nothing on the
// Case Actor's side either.
func (e *Engine) applyEntry(c *Case, entry ledger.Entry) (actor string) {
	doc, err := vocab.Parse(entry.PayloadSnapshot)
	var act *vocab.Activity
	if err == nil {
		act = doc.Activity()
	}
	if act != nil {
		actor = act.Actor.ID()
	}
	switch {
	case entry.Disposition == ledger.Rejected:
		// Carried out by no one.
	case err != nil:
		c.Diverged = fmt.Sprintf("entry %d: payload cannot be parsed: %v", entry.LogIndex, err)
	case act == nil:
		c.Diverged = fmt.Sprintf("entry %d: payload is not an activity", entry.LogIndex)
	default:
		if _, err := c.applyRecorded(entry.EventType, act, entryTime(entry)); err != nil {
			c.Diverged = fmt.Sprintf("entry %d (%s): %s", entry.LogIndex, entry.EventType, problem.Message(err))
		}
	}
	c.LedgerLen, c.TailHash = entry.LogIndex+1, entry.EntryHash
	return actor
}

func entryTime(e ledger.Entry) time.Time {
	t, err := time.Parse(time.RFC3339Nano, e.ReceivedAt)
	if err != nil {
		return time.Time{}
	}
	return t
}

// creator returns the actor that the first entry of case caseID says
// created it, when that actor is on the case's host; "" otherwise. It is
// only a candidate for the case's Case Actor: offerEntries and
// trustGenesis decide whether the entry is the case's creation and may be
// trusted.
func creator(entry ledger.Entry, caseID string) string {
	if entry.LogIndex != 0 || entry.CaseID != caseID {
		return ""
	}
	doc, err := vocab.Parse(entry.PayloadSnapshot)
	if err != nil {
		return ""
	}
	act := doc.Activity()
	if act == nil {
		return ""
	}
	if id := act.Actor.ID(); urlhost.Same(id, caseID) {
		return id
	}
	return ""
}

// trustGenesis decides whether to start a replica from the first entry of
// a case announced by sender, and returns the case's genesis hash. A local
// actor trusts a Case Actor that invited it and whose invitation it
// accepted, or the Case Actor of the organization it reported to: the
// case must carry a report the actor submitted to the case's owner, and
// the Case Actor must be hosted on the owner's server.
func (e *Engine) trustGenesis(tx *store.Tx, local, sender string, entry ledger.Entry) (string, error) {
	doc, err := vocab.Parse(entry.PayloadSnapshot)
	if err != nil {
		return "", problem.Unprocessable("the first entry of case %s cannot be parsed: %v", entry.CaseID, err)
	}
	act := doc.Activity()
	var vc *vocab.VulnerabilityCase
	if act != nil {
		vc, _ = act.Object.Object.(*vocab.VulnerabilityCase)
	}
	if vc == nil || act.Actor.ID() != sender || vc.ID != entry.CaseID || entry.EventType != EventType(vocab.CreateCase) {
		return "", problem.Unprocessable("the first entry of case %s is not its creation by %s", entry.CaseID, sender)
	}
	trusted := invitedBy(&tx.ReadTx, entry.CaseID, local) == sender
	owner := firstRef(vc.AttributedTo)
	if !trusted && urlhost.Same(owner, sender) {
		for _, ref := range vc.VulnerabilityReports {
			rec, ok, err := readReport(&tx.ReadTx, ref.ID(), local)
			if err != nil {
				return "", err
			}
			if _, reportedToOwner := rec.Peers[owner]; ok && rec.Role == Reporter && reportedToOwner {
				trusted = true
			}
		}
	}
	if !trusted {
		return "", problem.Forbidden("%s announces a case %s did not report to its owner nor join", sender, local)
	}
	if vc.GenesisHash == "" {
		return "", problem.Unprocessable("case %s carries no genesis hash", entry.CaseID)
	}
	return vc.GenesisHash, nil
}
