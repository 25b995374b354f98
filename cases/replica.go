package cases

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

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

// receiveEntry applies an entry a Case Actor announced to local actor to:
// it verifies that the entry chains onto this node's replica, applies it
// (and any buffered entries it unblocks) to the replica's case state in
// ledger order, and asks the Case Actor to replay what is missing when it
// sees a gap or an entry that does not chain.
func (e *Engine) receiveEntry(tx *store.Tx, to LocalActor, sender string, m Message, now time.Time) error {
	entry, err := entryOf(m.Activity)
	if err != nil {
		return err
	}
	if hostedBy(&tx.ReadTx, entry.CaseID) != "" {
		// This node writes the ledger of that case; an announcement of it
		// is an echo of its own entry.
		return nil
	}
	c, err := loadCase(&tx.ReadTx, entry.CaseID)
	if err != nil {
		return err
	}
	r, err := loadReplica(&tx.ReadTx, entry.CaseID)
	if err != nil {
		return err
	}
	if c != nil && c.CaseActor != "" && c.CaseActor != sender {
		return problem.Forbidden("%s is not the Case Actor of case %s (%s is)", sender, entry.CaseID, c.CaseActor)
	}
	if r == nil {
		if entry.LogIndex != 0 {
			// Without the first entry there is no genesis to chain from:
			// ask for the ledger from its start, if the sender is trusted.
			if invitedBy(&tx.ReadTx, entry.CaseID, to.Name) != sender {
				return problem.Forbidden("%s announces case %s, which %s has not joined", sender, entry.CaseID, to.Name)
			}
			return e.requestReplay(tx, to.Name, sender, entry.CaseID, "", now)
		}
		genesis, err := e.trustGenesis(tx, to, sender, entry)
		if err != nil {
			return err
		}
		r = &ledger.Replica{CaseID: entry.CaseID, Genesis: genesis, Tail: genesis}
		c = &Case{}
	}
	applied, result, err := r.Offer(entry)
	if err != nil {
		var mm *ledger.MismatchError
		if errors.As(err, &mm) {
			if err := saveReplica(tx, r); err != nil {
				return err
			}
			return e.requestReplay(tx, to.Name, sender, entry.CaseID, r.Tail, now)
		}
		return problem.Unprocessable("ledger entry %d of case %s: %v", entry.LogIndex, entry.CaseID, err)
	}
	for _, a := range applied {
		actor := e.applyEntry(c, a)
		if err := appendEntry(tx, a); err != nil {
			return err
		}
		if err := recordEvent(tx, c, a, actor); err != nil {
			return err
		}
	}
	if len(applied) > 0 {
		if err := saveCase(tx, c); err != nil {
			return err
		}
	}
	if err := saveReplica(tx, r); err != nil {
		return err
	}
	if result == ledger.Gap {
		return e.requestReplay(tx, to.Name, sender, entry.CaseID, r.Tail, now)
	}
	return nil
}

// applyEntry folds one verified entry into the replica's case. An entry
// the Case Actor recorded but this replica cannot apply means the two
// disagree on the rules: the replica keeps the ledger (the chain is what
// every participant agrees on) and records the disagreement. It returns
// the actor of the entry's activity, "" if the payload has none.
func (e *Engine) applyEntry(c *Case, entry ledger.Entry) (actor string) {
	doc, err := vocab.Parse(entry.PayloadSnapshot)
	if err != nil {
		c.Diverged = fmt.Sprintf("entry %d: payload cannot be parsed: %v", entry.LogIndex, err)
	} else if act := doc.Activity(); act == nil {
		c.Diverged = fmt.Sprintf("entry %d: payload is not an activity", entry.LogIndex)
	} else {
		actor = act.Actor.ID()
		if _, err := c.Apply(entry.EventType, act, entryTime(entry)); err != nil {
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

// trustGenesis decides whether to start a replica from the first entry of
// a case announced by sender, and returns the case's genesis hash. A local
// actor trusts a Case Actor that invited it and whose invitation it
// accepted, or the Case Actor of the organization it reported to: the
// case must carry a report the actor submitted to the case's owner, and
// the Case Actor must be hosted on the owner's server.
func (e *Engine) trustGenesis(tx *store.Tx, to LocalActor, sender string, entry ledger.Entry) (string, error) {
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
	trusted := invitedBy(&tx.ReadTx, entry.CaseID, to.Name) == sender
	owner := firstRef(vc.AttributedTo)
	if !trusted && sameHost(owner, sender) {
		for _, ref := range vc.VulnerabilityReports {
			rec, ok, err := readReport(&tx.ReadTx, ref.ID(), to.Name)
			if err != nil {
				return "", err
			}
			if _, reportedToOwner := rec.Peers[owner]; ok && rec.Role == Reporter && reportedToOwner {
				trusted = true
			}
		}
	}
	if !trusted {
		return "", problem.Forbidden("%s announces a case %s did not report to its owner nor join", sender, to.Name)
	}
	if vc.GenesisHash == "" {
		return "", problem.Unprocessable("case %s carries no genesis hash", entry.CaseID)
	}
	return vc.GenesisHash, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host != "" && strings.EqualFold(ua.Host, ub.Host)
}

// requestReplay asks the Case Actor to announce every entry after the one
// with hash tail, with Reject(CaseLedgerEntry) whose context is tail.
func (e *Engine) requestReplay(tx *store.Tx, from, caseActor, caseID, tail string, now time.Time) error {
	id := e.cfg.NewID("activities")
	obj := map[string]any{"type": vocab.TypeCaseLedgerEntry, "caseId": caseID}
	body := map[string]any{
		"@context":  vocab.VultronContext,
		"id":        id,
		"type":      "Reject",
		"actor":     e.cfg.PublicURL + "/actors/" + from,
		"object":    obj,
		"to":        []string{caseActor},
		"published": now.Format(time.RFC3339),
		"summary":   "replay the ledger after the entry named in context",
	}
	if tail != "" {
		body["context"] = tail
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return tx.EnqueueOutbound(store.Outbound{ID: id, Actor: from, Body: raw, CreatedAt: now,
		Semantic:   string(vocab.RejectCaseLedgerEntry),
		Deliveries: []store.DeliveryTarget{{Recipient: caseActor, OrderingKey: caseID}}})
}
