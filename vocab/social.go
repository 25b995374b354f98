package vocab

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/go-fed/activity/streams"
	gofed "github.com/go-fed/activity/streams/vocab"
)

// Plain ActivityStreams: following and articles.
//
// Besides the Vultron messages, a node's actors follow and are followed as
// Mastodon and GoToSocial actors are (Follow, answered by Accept or Reject
// of the Follow; Undo(Follow) to stop), publish advisories as Articles to
// their followers (Create, then Update for a revision) and share others'
// with Announce. None of these is a Vultron message, and Classify keeps
// calling them UNKNOWN, as the reference does: ClassifySocial names them
// for the pipelines that route them on a path of their own.
//
// These activities are built, and read, with go-fed's generated
// ActivityStreams types (github.com/go-fed/activity/streams), which model
// exactly this vocabulary: NewFollow, NewUndo, NewFollowAnswer,
// NewAnnounce and NewArticle build them and serialise them with
// streams.Serialize; ReadFollow reads a Follow, or the Follow an Accept,
// Reject or Undo carries, through streams' JSON resolver. One thing is
// added to what streams writes: the Hashtag tags of an Article (Mastodon's
// type, which go-fed v1.0.0's vocabulary lacks).

// The semantics ClassifySocial gives. They are not Vultron semantics:
// Classify never returns them.
const (
	SocialFollow        Semantic = "FOLLOW"
	SocialAcceptFollow  Semantic = "ACCEPT_FOLLOW"
	SocialRejectFollow  Semantic = "REJECT_FOLLOW"
	SocialUndoFollow    Semantic = "UNDO_FOLLOW"
	SocialAnnounce      Semantic = "ANNOUNCE_OBJECT"
	SocialCreateArticle Semantic = "CREATE_ARTICLE"
	SocialUpdateArticle Semantic = "UPDATE_ARTICLE"
	SocialDeleteArticle Semantic = "DELETE_OBJECT"
)

const socialFollowActivity = "Follow"

// IsSocial reports whether s is one of the semantics ClassifySocial gives.
func (s Semantic) IsSocial() bool {
	switch s {
	case SocialFollow, SocialAcceptFollow, SocialRejectFollow, SocialUndoFollow, SocialAnnounce,
		SocialCreateArticle, SocialUpdateArticle, SocialDeleteArticle:
		return true
	}
	return false
}

// ClassifySocial returns the plain ActivityStreams meaning of an activity
// that is no Vultron message (Classify found it UNKNOWN or could not
// resolve its object), or "" when it has none this node acts on:
// a Follow of an actor; an Accept, Reject or Undo of a Follow (inline, or
// by the id of one r resolves); an Announce of anything that is not a
// Vultron object; a Create, Update or Delete of an Article or Note outside
// a case.
func ClassifySocial(a *Activity, r Resolver) Semantic {
	obj := a.Object.Object
	if obj == nil && a.Object.IRI != "" && r != nil {
		obj, _ = r.Resolve(a.Object.IRI)
	}
	switch a.Type {
	case "Follow":
		if a.Object.IsZero() {
			return ""
		}
		if obj != nil {
			if _, isActor := obj.(*Actor); !isActor {
				return ""
			}
		}
		return SocialFollow
	case "Accept", "Reject", "Undo":
		inner, ok := obj.(*Activity)
		if !ok || inner.Type != socialFollowActivity {
			return ""
		}
		return map[string]Semantic{"Accept": SocialAcceptFollow, "Reject": SocialRejectFollow, "Undo": SocialUndoFollow}[a.Type]
	case "Announce":
		if obj != nil && kindOf(obj) != otherKind && kindOf(obj) != articleKind && kindOf(obj) != noteKind {
			return ""
		}
		if a.Object.IsZero() {
			return ""
		}
		return SocialAnnounce
	case "Create", "Update":
		if k := kindOf(obj); k != articleKind && k != noteKind || !a.Context.IsZero() {
			return ""
		}
		if a.Type == "Create" {
			return SocialCreateArticle
		}
		return SocialUpdateArticle
	case "Delete":
		if a.Object.IsZero() || !a.Context.IsZero() {
			return ""
		}
		return SocialDeleteArticle
	}
	return ""
}

// FollowInfo is what a Follow says: its id, who follows and whom.
type FollowInfo struct {
	ID     string
	Actor  string
	Object string
}

// ReadFollow reads, with go-fed's streams resolver, the Follow that raw
// (one JSON document, decoded) is or carries: a Follow itself, or the
// Follow inline in an Accept, Reject or Undo. A Follow given by id only
// comes back with just its ID set, for the caller to look up.
func ReadFollow(ctx context.Context, raw map[string]any) (FollowInfo, error) {
	var out FollowInfo
	fromFollow := func(f gofed.ActivityStreamsFollow) {
		out = FollowInfo{ID: idOf(f.GetJSONLDId()), Actor: firstActor(f.GetActivityStreamsActor()), Object: firstObjectIRI(f.GetActivityStreamsObject())}
	}
	fromObject := func(p gofed.ActivityStreamsObjectProperty) error {
		if p == nil || p.Len() != 1 {
			return errors.New("the activity must carry one Follow")
		}
		it := p.At(0)
		switch {
		case it.IsActivityStreamsFollow():
			fromFollow(it.GetActivityStreamsFollow())
		case it.IsIRI():
			out = FollowInfo{ID: it.GetIRI().String()}
		default:
			return errors.New("the activity's object is not a Follow")
		}
		return nil
	}
	res, err := streams.NewJSONResolver(
		func(_ context.Context, f gofed.ActivityStreamsFollow) error { fromFollow(f); return nil },
		func(_ context.Context, a gofed.ActivityStreamsAccept) error {
			return fromObject(a.GetActivityStreamsObject())
		},
		func(_ context.Context, a gofed.ActivityStreamsReject) error {
			return fromObject(a.GetActivityStreamsObject())
		},
		func(_ context.Context, a gofed.ActivityStreamsUndo) error {
			return fromObject(a.GetActivityStreamsObject())
		},
	)
	if err != nil {
		return FollowInfo{}, fmt.Errorf("read follow: %w", err)
	}
	if err := res.Resolve(ctx, raw); err != nil {
		return FollowInfo{}, fmt.Errorf("read follow: %w", err)
	}
	if out.ID == "" {
		return FollowInfo{}, errors.New("read follow: the Follow has no id")
	}
	return out, nil
}

func idOf(p gofed.JSONLDIdProperty) string {
	if p == nil || p.Get() == nil {
		return ""
	}
	return p.Get().String()
}

// iriOrObject is an item of a go-fed property that holds an IRI or an
// object: the actor and object properties' iterators alike.
type iriOrObject interface {
	IsIRI() bool
	GetIRI() *url.URL
	GetType() gofed.Type
}

// firstID returns the id of the first item of a go-fed actor or object
// property: its IRI, or the id of the object given inline; "" when none.
func firstID[I iriOrObject](n int, at func(int) I) string {
	if n == 0 {
		return ""
	}
	it := at(0)
	if it.IsIRI() {
		return it.GetIRI().String()
	}
	if t := it.GetType(); t != nil {
		return idOf(t.GetJSONLDId())
	}
	return ""
}

func firstActor(p gofed.ActivityStreamsActorProperty) string {
	if p == nil {
		return ""
	}
	return firstID(p.Len(), p.At)
}

func firstObjectIRI(p gofed.ActivityStreamsObjectProperty) string {
	if p == nil {
		return ""
	}
	return firstID(p.Len(), p.At)
}

func parseIRIs(ids ...string) ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(ids))
	for _, id := range ids {
		u, err := url.Parse(id)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%q is not an absolute IRI", id)
		}
		out = append(out, u)
	}
	return out, nil
}

func serialize(t gofed.Type) (map[string]any, error) {
	m, err := streams.Serialize(t)
	if err != nil {
		return nil, fmt.Errorf("serialize %s: %w", t.GetTypeName(), err)
	}
	return m, nil
}

// NewFollow builds Follow(object) to object, for an actor's outbox, which
// gives it its id and actor.
func NewFollow(object string) (map[string]any, error) {
	iris, err := parseIRIs(object)
	if err != nil {
		return nil, err
	}
	f := streams.NewActivityStreamsFollow()
	op := streams.NewActivityStreamsObjectProperty()
	op.AppendIRI(iris[0])
	f.SetActivityStreamsObject(op)
	to := streams.NewActivityStreamsToProperty()
	to.AppendIRI(iris[0])
	f.SetActivityStreamsTo(to)
	return serialize(f)
}

// followOf builds the Follow an answer or an Undo carries inline.
func followOf(fi FollowInfo) (gofed.ActivityStreamsFollow, error) {
	iris, err := parseIRIs(fi.ID, fi.Actor, fi.Object)
	if err != nil {
		return nil, err
	}
	f := streams.NewActivityStreamsFollow()
	id := streams.NewJSONLDIdProperty()
	id.Set(iris[0])
	f.SetJSONLDId(id)
	ap := streams.NewActivityStreamsActorProperty()
	ap.AppendIRI(iris[1])
	f.SetActivityStreamsActor(ap)
	op := streams.NewActivityStreamsObjectProperty()
	op.AppendIRI(iris[2])
	f.SetActivityStreamsObject(op)
	return f, nil
}

// NewUndo builds Undo(Follow) of a Follow the acting actor sent, to the
// followed actor, for the actor's outbox.
func NewUndo(fi FollowInfo) (map[string]any, error) {
	f, err := followOf(fi)
	if err != nil {
		return nil, err
	}
	u := streams.NewActivityStreamsUndo()
	op := streams.NewActivityStreamsObjectProperty()
	op.AppendActivityStreamsFollow(f)
	u.SetActivityStreamsObject(op)
	to := streams.NewActivityStreamsToProperty()
	to.AppendIRI(f.GetActivityStreamsObject().At(0).GetIRI())
	u.SetActivityStreamsTo(to)
	return serialize(u)
}

// NewFollowAnswer builds Accept(Follow) (accept true) or Reject(Follow)
// of a Follow the acting actor received, to the follower, with the
// Follow inline as Mastodon and GoToSocial send it.
func NewFollowAnswer(fi FollowInfo, accept bool) (map[string]any, error) {
	f, err := followOf(fi)
	if err != nil {
		return nil, err
	}
	op := streams.NewActivityStreamsObjectProperty()
	op.AppendActivityStreamsFollow(f)
	to := streams.NewActivityStreamsToProperty()
	to.AppendIRI(f.GetActivityStreamsActor().At(0).GetIRI())
	if accept {
		a := streams.NewActivityStreamsAccept()
		a.SetActivityStreamsObject(op)
		a.SetActivityStreamsTo(to)
		return serialize(a)
	}
	r := streams.NewActivityStreamsReject()
	r.SetActivityStreamsObject(op)
	r.SetActivityStreamsTo(to)
	return serialize(r)
}

// NewAnnounce builds Announce(object) to the given audience (the acting
// actor's followers collection, Public), for its outbox.
func NewAnnounce(object string, to ...string) (map[string]any, error) {
	iris, err := parseIRIs(append([]string{object}, to...)...)
	if err != nil {
		return nil, err
	}
	a := streams.NewActivityStreamsAnnounce()
	op := streams.NewActivityStreamsObjectProperty()
	op.AppendIRI(iris[0])
	a.SetActivityStreamsObject(op)
	tp := streams.NewActivityStreamsToProperty()
	for _, u := range iris[1:] {
		tp.AppendIRI(u)
	}
	a.SetActivityStreamsTo(tp)
	return serialize(a)
}

// ArticleLink is an attachment of an Article: a link to one of the
// advisory's documents.
type ArticleLink struct {
	Href      string
	MediaType string
	Name      string
}

// Article is what NewArticle builds: a published advisory.
type Article struct {
	ID, URL        string
	Name, Summary  string
	Content        string // HTML
	AttributedTo   string
	Published      string
	Updated        string // set on a revision
	Attachments    []ArticleLink
	Hashtags       []string // without the '#', such as CVE-2026-1234
	Context        string   // the case
	To, Cc         []string
	Update         bool // Update(Article) rather than Create(Article)
	HashtagBaseURL string
}

// NewArticle builds Create(Article), or Update(Article) for a revision,
// for the acting actor's outbox.
func NewArticle(a Article) (map[string]any, error) {
	iris, err := parseIRIs(a.ID, a.URL, a.AttributedTo)
	if err != nil {
		return nil, err
	}
	art := streams.NewActivityStreamsArticle()
	id := streams.NewJSONLDIdProperty()
	id.Set(iris[0])
	art.SetJSONLDId(id)
	nm := streams.NewActivityStreamsNameProperty()
	nm.AppendXMLSchemaString(a.Name)
	art.SetActivityStreamsName(nm)
	if a.Summary != "" {
		sm := streams.NewActivityStreamsSummaryProperty()
		sm.AppendXMLSchemaString(a.Summary)
		art.SetActivityStreamsSummary(sm)
	}
	ct := streams.NewActivityStreamsContentProperty()
	ct.AppendXMLSchemaString(a.Content)
	art.SetActivityStreamsContent(ct)
	up := streams.NewActivityStreamsUrlProperty()
	up.AppendIRI(iris[1])
	art.SetActivityStreamsUrl(up)
	at := streams.NewActivityStreamsAttributedToProperty()
	at.AppendIRI(iris[2])
	art.SetActivityStreamsAttributedTo(at)
	att := streams.NewActivityStreamsAttachmentProperty()
	for _, l := range a.Attachments {
		href, err := parseIRIs(l.Href)
		if err != nil {
			return nil, err
		}
		link := streams.NewActivityStreamsLink()
		hp := streams.NewActivityStreamsHrefProperty()
		hp.Set(href[0])
		link.SetActivityStreamsHref(hp)
		mt := streams.NewActivityStreamsMediaTypeProperty()
		mt.Set(l.MediaType)
		link.SetActivityStreamsMediaType(mt)
		ln := streams.NewActivityStreamsNameProperty()
		ln.AppendXMLSchemaString(l.Name)
		link.SetActivityStreamsName(ln)
		att.AppendActivityStreamsLink(link)
	}
	if att.Len() > 0 {
		art.SetActivityStreamsAttachment(att)
	}
	to, err := parseIRIs(a.To...)
	if err != nil {
		return nil, err
	}
	cc, err := parseIRIs(a.Cc...)
	if err != nil {
		return nil, err
	}
	tp, cp := streams.NewActivityStreamsToProperty(), streams.NewActivityStreamsCcProperty()
	for _, u := range to {
		tp.AppendIRI(u)
	}
	for _, u := range cc {
		cp.AppendIRI(u)
	}
	art.SetActivityStreamsTo(tp)
	if cp.Len() > 0 {
		art.SetActivityStreamsCc(cp)
	}
	var act gofed.Type
	if a.Update {
		u := streams.NewActivityStreamsUpdate()
		op := streams.NewActivityStreamsObjectProperty()
		op.AppendActivityStreamsArticle(art)
		u.SetActivityStreamsObject(op)
		u.SetActivityStreamsTo(tp)
		if cp.Len() > 0 {
			u.SetActivityStreamsCc(cp)
		}
		act = u
	} else {
		c := streams.NewActivityStreamsCreate()
		op := streams.NewActivityStreamsObjectProperty()
		op.AppendActivityStreamsArticle(art)
		c.SetActivityStreamsObject(op)
		c.SetActivityStreamsTo(tp)
		if cp.Len() > 0 {
			c.SetActivityStreamsCc(cp)
		}
		act = c
	}
	if a.Context != "" {
		ctx, err := parseIRIs(a.Context)
		if err != nil {
			return nil, err
		}
		cp := streams.NewActivityStreamsContextProperty()
		cp.AppendIRI(ctx[0])
		switch x := act.(type) {
		case gofed.ActivityStreamsCreate:
			x.SetActivityStreamsContext(cp)
		case gofed.ActivityStreamsUpdate:
			x.SetActivityStreamsContext(cp)
		}
	}
	m, err := serialize(act)
	if err != nil {
		return nil, err
	}
	obj, _ := m["object"].(map[string]any)
	if obj == nil {
		return nil, errors.New("serialize article: no object")
	}
	if a.Published != "" {
		obj["published"] = a.Published
	}
	if a.Updated != "" {
		obj["updated"] = a.Updated
	}
	if len(a.Hashtags) > 0 {
		// Mastodon's Hashtag, which go-fed's vocabulary does not have.
		tags := make([]any, 0, len(a.Hashtags))
		for _, h := range a.Hashtags {
			tag := map[string]any{"type": "Hashtag", "name": "#" + h}
			if a.HashtagBaseURL != "" {
				tag["href"] = a.HashtagBaseURL + url.PathEscape(h)
			}
			tags = append(tags, tag)
		}
		obj["tag"] = tags
	}
	return m, nil
}
