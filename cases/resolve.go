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
// the Offer that carried each). An object whose record the store could
// not read is not found; Err says so.
type Resolver struct {
	tx  *store.ReadTx
	err *error // the first read that failed for another reason than absence
}

// NewResolver returns a Resolver that reads through tx; it is valid only
// while tx is.
func NewResolver(tx *store.ReadTx) Resolver { return Resolver{tx: tx, err: new(error)} }

var _ vocab.Resolver = Resolver{}

// Err returns the first failure of the store (a record that does not
// decode, a store that cannot serve) that a Resolve through r met, or nil;
// the absence of what was looked for is none. After a failure an object
// not found may be one the node holds, and what an activity means, as
// classified through r, is not known. Whoever acts on that meaning
// answers this error instead.
func (r Resolver) Err() error {
	if r.err == nil {
		return nil
	}
	return *r.err
}

// failed reports whether err is a failure of the store rather than
// nothing or the absence of what was read (an id the store cannot hold,
// such as a participant's with no case before it, names nothing), and
// keeps the first for Err.
func (r Resolver) failed(err error) bool {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return false
	}
	if r.err != nil && *r.err == nil {
		*r.err = err
	}
	return true
}

// Resolve returns the object with the given id, if this node holds it.
func (r Resolver) Resolve(id string) (vocab.Object, bool) {
	if id == "" {
		return nil, false
	}
	if obj, ok := r.activity(id); ok {
		return obj, true
	}
	if c, err := loadCase(r.tx, id); !r.failed(err) && c != nil && c.ID != "" {
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
	if r.failed(err) || c == nil {
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
	var body []byte
	stored, err := r.tx.Activity(id)
	switch {
	case err == nil:
		body = stored.Body
	case r.failed(err):
		return nil, false
	default:
		obj, ok, err := recordedObject(r.tx, id)
		if r.failed(err) || !ok {
			return nil, false
		}
		body = obj
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
		r.failed(err)
		return nil, false
	}
	var found vocab.Object
	errStop := errors.New("stop")
	err = b.ForEach(func(actorName, _ []byte) error {
		rec, ok, err := readReport(r.tx, id, string(actorName))
		if err != nil {
			return err
		}
		if !ok || rec.OfferID == "" {
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
	if !errors.Is(err, errStop) && r.failed(err) {
		return nil, false
	}
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
