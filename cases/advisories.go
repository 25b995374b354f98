package cases

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/advisory"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// The cases whose advisory is published are indexed in the case bucket
// named by advisoryIndex (one key per case id, written by saveCase when a
// case's first revision is recorded), so that listing the advisories, the
// provider's feed and its index cost the advisories listed, not a scan of
// every case. They are indexed by their latest revision too, newest first,
// in the case bucket named by advisoryUpdates: the key is updateKey, and
// advisoryIndex keeps it as the case's value so that a new revision moves
// the case's entry. Stores written before advisoryUpdates have empty
// values in advisoryIndex until MigrateAdvisoryUpdates fills them and
// creates the bucket named by advisoryUpdatesIndexed.
const (
	advisoryIndex          = "advisories published"
	advisoryUpdates        = "advisories by update"
	advisoryUpdatesIndexed = "advisories indexed by update"
)

// updateKey is the key of case c in advisoryUpdates: its latest
// revision's time, inverted so that the newest sorts first, and its id.
func updateKey(c *Case) []byte {
	at := c.Advisory.Revisions[len(c.Advisory.Revisions)-1].At.UnixNano()
	k := binary.BigEndian.AppendUint64(nil, math.MaxUint64-uint64(max(at, 0)))
	return append(k, c.ID...)
}

// indexAdvisory indexes case c, whose record is being saved, once its
// advisory is published, and again at each revision.
func indexAdvisory(tx *store.Tx, c *Case) error {
	if c.Advisory == nil || len(c.Advisory.Revisions) == 0 {
		return nil
	}
	return reindex(tx, advisoryIndex, advisoryUpdates, c.ID, updateKey(c)) // dates.go
}

// RecentAdvisories returns up to limit cases whose advisory is published,
// the latest revised first.
func RecentAdvisories(tx *store.ReadTx, limit int) ([]*Case, error) {
	return casesInOrder(tx, advisoryUpdates, nil, limit) // dates.go
}

// MigrateAdvisoryUpdates indexes by their latest revision the published
// advisories of a store written before advisoryUpdates (a page of them
// per transaction), and then marks the store so that later calls return
// at once. It returns how many it read.
func MigrateAdvisoryUpdates(ctx context.Context, db *store.DB) (int, error) {
	return migratePages(ctx, db, advisoryUpdatesIndexed, "index the advisories by update", func(tx *store.Tx, after string) (int, string, error) {
		cs, next, err := PublishedAdvisories(&tx.ReadTx, after, 100)
		if err != nil {
			return 0, "", err
		}
		for _, c := range cs {
			if err := indexAdvisory(tx, c); err != nil {
				return 0, "", err
			}
		}
		return len(cs), next, nil
	})
}

// errPageFull stops a range once a page is full.
var errPageFull = errors.New("page full")

// PublishedAdvisories returns up to limit cases whose advisory is
// published, in id order after the case after ("" for the first), and the
// id to continue after ("" when there are no more).
func PublishedAdvisories(tx *store.ReadTx, after string, limit int) ([]*Case, string, error) {
	idx, err := tx.Case(advisoryIndex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var out []*Case
	next := ""
	err = idx.Range([]byte(after), func(k, _ []byte) error {
		id := string(k)
		if id == after {
			return nil
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			return errPageFull
		}
		c, err := loadCase(tx, id)
		if err != nil {
			return err
		}
		if c != nil {
			out = append(out, c)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, "", err
	}
	return out, next, nil
}

// TrackingID returns the id of a case's advisory in its documents
// (CSAF's tracking id): VULTRON- and the case's short id, upper case.
func TrackingID(caseID string) string { return "VULTRON-" + strings.ToUpper(ShortID(caseID)) }

// KnownCaseActor reports whether id is the Case Actor of a case this node
// holds (hosted or replicated).
func KnownCaseActor(tx *store.ReadTx, id string) (bool, error) {
	short, ok := strings.CutPrefix(id[strings.LastIndex(id, "/")+1:], CaseActorPrefix)
	if !ok || short == "" {
		return false, nil
	}
	c, err := caseByShortID(tx, short, func(c *Case) bool { return c.CaseActor == id })
	return c != nil, err
}

// PublishedAdvisory returns the case this node holds whose advisory, of
// tracking id tracking (any case), has been published; nil when there is
// none.
func PublishedAdvisory(tx *store.ReadTx, tracking string) (*Case, error) {
	short, ok := strings.CutPrefix(strings.ToUpper(tracking), "VULTRON-")
	if !ok || short == "" {
		return nil, nil
	}
	return caseByShortID(tx, strings.ToLower(short), func(c *Case) bool {
		return c.Advisory != nil && len(c.Advisory.Revisions) > 0 && strings.EqualFold(TrackingID(c.ID), tracking)
	})
}

// ArticleOf returns the id of the Article that published revision i (0
// for the first) of the advisory.
func (a *Advisory) ArticleOf(i int) string {
	if r := a.Revisions[i]; r.Article != "" {
		return r.Article
	}
	return a.ArticleID
}

// PublishedAs returns how many of the advisory's revisions the Article
// article shows — those up to the latest one that ours finds a local
// actor published as that Article — and that actor; 0 and "" when no
// revision was published so. A node serves the Article at its advisory
// page to the revision PublishedAs returns for it, so that a former
// owner's node goes on serving what its actor published. ours must not
// take a revision for its actor's on the ledger's word alone: a replica's
// ledger is what its Case Actor recorded, which may be anything
// (SentRevision reads the node's own record of what its actor sent).
func (c *Case) PublishedAs(article string, ours func(r Revision) (bool, error)) (int, string, error) {
	if c.Advisory == nil {
		return 0, "", nil
	}
	for i := len(c.Advisory.Revisions) - 1; i >= 0; i-- {
		r := c.Advisory.Revisions[i]
		if c.Advisory.ArticleOf(i) != article {
			continue
		}
		if r.Article == "" {
			r.Article = article
		}
		ok, err := ours(r)
		if err != nil {
			return 0, "", err
		}
		if ok {
			return i + 1, r.By, nil
		}
	}
	return 0, "", nil
}

// SentRevision reports whether local actor name published revision r
// (whose Article is set) itself: the node's store holds r's activity as
// one name sent, as r.By, publishing r's Article with r's text. A revision
// that a replica's Case Actor recorded but the node's actor never sent
// (a Case Actor that lies) is not its actor's, and neither is one whose
// text the Case Actor changed.
func SentRevision(tx *store.ReadTx, r Revision, name string) (bool, error) {
	if r.ActivityID == "" {
		return false, nil
	}
	sent, err := tx.Activity(r.ActivityID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if sent.Direction != store.DirectionOutbound || sent.Actor != name {
		return false, nil
	}
	doc, err := vocab.Parse(sent.Body)
	if err != nil {
		return false, nil
	}
	act := doc.Activity()
	if act == nil || act.Actor.ID() != r.By {
		return false, nil
	}
	art, ok := act.Object.Object.(*vocab.GenericObject)
	return ok && art.Type == "Article" && art.ID == r.Article && strings.TrimSpace(art.Name) == r.Title &&
		art.Summary == r.Summary && art.Content == r.Details, nil
}

// caseByShortID returns the first case of short id short that match
// accepts, or nil when none does.
func caseByShortID(tx *store.ReadTx, short string, match func(c *Case) bool) (*Case, error) {
	ids, err := ResolveShortID(tx, short, "case")
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		c, err := loadCase(tx, id)
		if err != nil {
			return nil, err
		}
		if c != nil && match(c) {
			return c, nil
		}
	}
	return nil, nil
}

// ActorName returns the name a participant goes by: its contact name, or
// the last segment of its id.
func (c *Case) ActorName(actor string) string {
	if p := c.Participant(actor); p != nil && p.Contact.Name != "" {
		return p.Contact.Name
	}
	return ShortID(actor)
}

// AdvisoryDocument returns what the documents of revision rev (1 for the
// first; 0 for the latest) of the case's advisory say, or, given next (a
// DraftRevision), those of a draft of the next revision. publisher, url and
// csafURL come from the node that serves it.
func (c *Case) AdvisoryDocument(rev int, next *Revision, publisher advisory.Publisher, url, csafURL, generator string) (*advisory.Advisory, bool) {
	draft := next != nil
	var revs []Revision
	if c.Advisory != nil {
		revs = c.Advisory.Revisions
	}
	if !draft {
		if len(revs) == 0 {
			return nil, false
		}
		if rev <= 0 || rev > len(revs) {
			rev = len(revs)
		}
		revs = revs[:rev]
	} else {
		revs = append(revs[:len(revs):len(revs)], *next)
	}
	cur := revs[len(revs)-1]
	a := &advisory.Advisory{
		TrackingID: TrackingID(c.ID), Title: cur.Title, Summary: cur.Summary, Details: cur.Details,
		URL: url, CSAFURL: csafURL, Publisher: publisher, Draft: draft, CaseID: c.ID, Generator: generator,
		IDs: cur.VulnerabilityIDs,
	}
	for i, r := range revs {
		summary := "Initial publication"
		if i > 0 {
			summary = "Revision " + strconv.Itoa(r.Number)
		}
		if draft && i == len(revs)-1 {
			summary = "Draft for review"
		}
		a.Revisions = append(a.Revisions, advisory.Revision{Number: r.Number, Date: r.At, Summary: summary})
	}
	for _, p := range cur.Products {
		a.Products = append(a.Products, advisory.Product{Vendor: c.ActorName(p.Vendor), Name: p.Name, PURL: p.PURL, CPE: p.CPE,
			Versions: p.Versions, Status: p.Status, Justification: p.Justification, Statement: p.Statement})
	}
	for _, i := range cur.Involvements {
		name := i.Name
		if name == "" {
			name = ShortID(i.Actor)
		}
		a.Involvements = append(a.Involvements, advisory.Involvement{Name: name, Roles: i.Roles, State: i.ParticipantState})
	}
	return a, true
}

// DraftRevision returns the revision a publication now would record, with
// the text of the draft shared last, or the case's name for a title.
func (c *Case) DraftRevision(at time.Time, by string) Revision {
	r := Revision{At: at, By: by, Products: c.Products, VulnerabilityIDs: c.VulnerabilityIDs, Reports: len(c.Reports), CaseOpened: c.Published, PXA: c.PXA,
		Text: Text{Title: c.Name}}
	if c.Advisory != nil && c.Advisory.Draft != nil {
		r.Text = c.Advisory.Draft.Text
	} else if c.Advisory != nil && len(c.Advisory.Revisions) > 0 {
		r.Text = c.Advisory.Revisions[len(c.Advisory.Revisions)-1].Text
	}
	r.Number = 1
	if c.Advisory != nil {
		r.Number = len(c.Advisory.Revisions) + 1
	}
	for _, q := range c.Participants {
		if !q.Removed {
			r.Involvements = append(r.Involvements, Involvement{Actor: q.Actor, Name: q.Contact.Name, Roles: q.Roles,
				ParticipantState: q.ParticipantState, Since: q.JoinedAt})
		}
	}
	return r
}
