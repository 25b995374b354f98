package cases

import (
	"errors"
	"strings"

	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Resolver finds the objects this node holds by id, for classifying
// activities that refer to them: activities it sent or received or that a
// case it takes part in recorded, the cases
// it hosts or keeps a replica of, and the reports its actors track (through
// the Offer that carried each).
type Resolver struct {
	tx *store.ReadTx
}

// NewResolver returns a Resolver that reads through tx; it is valid only
// while tx is.
func NewResolver(tx *store.ReadTx) Resolver { return Resolver{tx: tx} }

var _ vocab.Resolver = Resolver{}

// Resolve returns the object with the given id, if this node holds it.
func (r Resolver) Resolve(id string) (vocab.Object, bool) {
	if id == "" {
		return nil, false
	}
	if obj, ok := r.activity(id); ok {
		return obj, true
	}
	if c, err := loadCase(r.tx, id); err == nil && c != nil && c.ID != "" {
		vc := &vocab.VulnerabilityCase{}
		vc.ID, vc.Type, vc.Name = c.ID, vocab.TypeVulnerabilityCase, c.Name
		return vc, true
	}
	if obj, ok := r.participant(id); ok {
		return obj, true
	}
	return r.report(id)
}

// participant finds a case participant by its id, which lives under its
// case's id.
func (r Resolver) participant(id string) (vocab.Object, bool) {
	caseID, _, ok := strings.Cut(id, "/participants/")
	if !ok {
		return nil, false
	}
	c, err := loadCase(r.tx, caseID)
	if err != nil || c == nil {
		return nil, false
	}
	for _, p := range c.Participants {
		if p.ID == id {
			cp := &vocab.CaseParticipant{}
			cp.ID, cp.Type = p.ID, vocab.TypeCaseParticipant
			cp.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(p.Actor)}, Single: true}
			cp.Context = vocab.RefTo(c.ID)
			return cp, true
		}
	}
	return nil, false
}

func (r Resolver) activity(id string) (vocab.Object, bool) {
	body := []byte(nil)
	if stored, err := r.tx.Activity(id); err == nil {
		body = stored.Body
	} else if obj, ok := recordedObject(r.tx, id); ok {
		body = obj
	} else {
		return nil, false
	}
	doc, err := vocab.Parse(body)
	if err != nil {
		return nil, false
	}
	return doc.Object, true
}

// report finds a tracked report through the Offer that carried it.
func (r Resolver) report(id string) (vocab.Object, bool) {
	b, err := r.tx.Case(reportBucket(id))
	if err != nil {
		return nil, false
	}
	var found vocab.Object
	errStop := errors.New("stop")
	_ = b.ForEach(func(actorName, _ []byte) error {
		rec, ok, err := readReport(r.tx, id, string(actorName))
		if err != nil || !ok || rec.OfferID == "" {
			return nil
		}
		offer, ok := r.activity(rec.OfferID)
		if !ok {
			return nil
		}
		if a, isAct := offer.(*vocab.Activity); isAct {
			if rep, isRep := a.Object.Object.(*vocab.VulnerabilityReport); isRep && rep.ID == id {
				found = rep
				return errStop
			}
		}
		return nil
	})
	return found, found != nil
}

// CaseOf returns the case whose ledger recorded the object or activity with
// the given id (a report, a note, a ledger entry's activity), or nil when no
// case held on this node recorded it.
func CaseOf(tx *store.ReadTx, id string) (*Case, error) {
	idx, err := tx.Case(objectIndex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := idx.Get([]byte(id))
	if len(v) <= 8 {
		return nil, nil
	}
	return loadCase(tx, string(v[8:]))
}

// MayRead reports whether actor may read an object the case recorded, given
// whether actor is otherwise a party to it (its sender, an addressee, a
// party to the report): a participant that was not removed may; a removed
// participant may not, whatever it took part in; anyone else only as a
// party (an invitee reads the Invite addressed to it, not the case's
// content).
func (c *Case) MayRead(actor string, party bool) bool {
	if c.CanRead(actor) {
		return true
	}
	if p := c.Participant(actor); p != nil && p.Removed {
		return false
	}
	return party
}
