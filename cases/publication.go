package cases

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/openvultron/vultron/advisory"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/vocab"
)

// A case ends in a public advisory. What the advisory says is recorded in
// the ledger like every case activity, so every replica knows it and the
// advisory's documents (package advisory) are derived from the case alone:
//
//   - the products: Add(ProductStatus), a vendor's statement of a product's
//     status (affected, fixed, not-affected, under-investigation), sent by
//     that vendor or by the owner; a later statement of the same product
//     and versions replaces the earlier one;
//   - the draft and its review (GI notes, acknowledged GK by the Case
//     Actor): the owner shares a draft with chosen participants, a note
//     whose attachment is the draft Article and whose audience is the
//     reviewers; each reviewer answers with a note in reply to it whose
//     "review" is "approve" or "request-changes", with a comment;
//   - the publication time: the owner proposes one in a note's
//     "publicationTime"; a participant accepts by a note in reply to it
//     that repeats the time;
//   - the publication: Create(Article) in the case's context by the owner
//     (refused while the embargo is in force and the public is not aware),
//     then Update(Article) of the same Article for each revision. Each
//     revision keeps what the advisory says at that time: the text, the
//     products, the vulnerability's ids and every participant's part, so a
//     revision's documents never change once published;
//   - a change of owner: an Article lives on its publisher's server, which
//     another server's actor cannot update. After the ownership of a case
//     moves, the new owner publishes its first revision as a Create of an
//     Article of its own, on its own server, and each revision records the
//     Article that published it (Revision.Article). The former owner's
//     server goes on serving the former owner's Article with the revisions
//     it published (Case.PublishedAs).

// Product statuses, as ProductStatus.status spells them.
const (
	ProductAffected           = "affected"
	ProductFixed              = "fixed"
	ProductNotAffected        = "not-affected"
	ProductUnderInvestigation = "under-investigation"
)

// Justifications of a not-affected status (CSAF's VEX flags, OpenVEX's
// justifications).
var justifications = []string{"component_not_present", "vulnerable_code_not_present",
	"vulnerable_code_cannot_be_controlled_by_adversary", "vulnerable_code_not_in_execute_path", "inline_mitigations_already_exist"}

// Bounds of what a case records for its advisory.
const (
	MaxProducts     = 200
	MaxRevisions    = 50
	MaxReviewers    = 32
	maxProductField = 200
	maxIdentifier   = 1000
	maxAdvisoryText = 64 << 10
)

// Product is a vendor's statement of one product's status.
type Product struct {
	Vendor        string    `json:"vendor"`
	Name          string    `json:"name"`
	PURL          string    `json:"purl,omitempty"`
	CPE           string    `json:"cpe,omitempty"`
	Versions      string    `json:"versions,omitempty"`
	Status        string    `json:"status"`
	Justification string    `json:"justification,omitempty"`
	Statement     string    `json:"statement,omitempty"`
	By            string    `json:"by"`
	At            time.Time `json:"at"`
}

func (p Product) key() string {
	return strings.Join([]string{p.Vendor, p.Name, p.PURL, p.CPE, p.Versions}, "\x00")
}

// Advisory is what the case records of its advisory.
type Advisory struct {
	// ArticleID is the id of the Article of the latest revision; empty
	// before the first publication.
	ArticleID string     `json:"articleId,omitempty"`
	Revisions []Revision `json:"revisions,omitempty"`
	// Draft is the draft shared for review last, with its reviewers.
	Draft *Draft `json:"draft,omitempty"`
	// PublishAt is the proposed publication time and who accepted it.
	PublishAt *PublicationTime `json:"publishAt,omitempty"`
}

// Text is what an advisory says in words.
type Text struct {
	Title   string `json:"title"`
	Summary string `json:"summary,omitempty"`
	Details string `json:"details,omitempty"`
}

// Revision is one published revision of the advisory, with everything its
// documents say.
type Revision struct {
	Number     int       `json:"number"`
	At         time.Time `json:"at"`
	By         string    `json:"by"`
	ActivityID string    `json:"activityId"`
	// Article is the id of the Article that published the revision: the
	// advisory's Article until its ownership moves to an actor of another
	// server, whose first revision is an Article of its own. Empty in
	// records written before revisions named it: then Advisory.ArticleID.
	Article string `json:"article,omitempty"`
	Text
	Products         []Product     `json:"products,omitempty"`
	VulnerabilityIDs []string      `json:"vulnerabilityIds,omitempty"`
	Involvements     []Involvement `json:"involvements,omitempty"`
	Reports          int           `json:"reports"`
	CaseOpened       time.Time     `json:"caseOpened"`
	PXA              cvdstate.PXA  `json:"pxaState"`
}

// Involvement is a participant's part in the case when a revision was
// published.
type Involvement struct {
	Actor string           `json:"actor"`
	Name  string           `json:"name,omitempty"`
	Roles cvdstate.RoleSet `json:"roles"`
	cvdstate.ParticipantState
	Since time.Time `json:"since"`
}

// Review states of a reviewer.
const (
	ReviewInvited          = "invited"
	ReviewApproved         = "approve"
	ReviewChangesRequested = "request-changes"
)

// Draft is a draft advisory shared for review.
type Draft struct {
	NoteID string    `json:"noteId"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Text
	Reviews []Review `json:"reviews"`
}

// Review is one reviewer's answer to a draft.
type Review struct {
	Actor   string    `json:"actor"`
	State   string    `json:"state"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// Pending returns the reviewers that have not answered.
func (d *Draft) Pending() []string {
	var out []string
	for _, r := range d.Reviews {
		if r.State == ReviewInvited {
			out = append(out, r.Actor)
		}
	}
	return out
}

// ChangesRequested returns the reviews that asked for changes to the
// draft: until the owner shares a revised draft, which asks its reviewers
// again, they stand against publishing it.
func (d *Draft) ChangesRequested() []Review {
	var out []Review
	for _, r := range d.Reviews {
		if r.State == ReviewChangesRequested {
			out = append(out, r)
		}
	}
	return out
}

// PublicationTime is a proposed time of publication.
type PublicationTime struct {
	NoteID   string    `json:"noteId"`
	By       string    `json:"by"`
	Time     time.Time `json:"time"`
	Accepted []string  `json:"accepted,omitempty"`
}

// PublicationAgreed returns the publication time the participants agreed
// on, proposed and accepted by another participant, when it is still to
// come at now, the advisory has not been published and the case is not
// public: publishing before it breaks that agreement, which a public
// vulnerability ends. ok is false otherwise.
func (c *Case) PublicationAgreed(now time.Time) (pt PublicationTime, ok bool) {
	a := c.Advisory
	if a == nil || a.PublishAt == nil || len(a.PublishAt.Accepted) == 0 || len(a.Revisions) > 0 ||
		!now.Before(a.PublishAt.Time) || c.PXA&cvdstate.PXAPublic != 0 {
		return PublicationTime{}, false
	}
	return *a.PublishAt, true
}

// PublicationBlocked returns why the advisory may not be published now,
// "" when it may: while the embargo is in force and the public is not
// aware of the vulnerability, nothing is published.
func (c *Case) PublicationBlocked() string {
	if c.EM.InForce() && c.PXA&cvdstate.PXAPublic == 0 {
		end := ""
		if c.Embargo != nil {
			end = " until " + c.Embargo.End.UTC().Format(time.RFC3339)
		}
		return fmt.Sprintf("the embargo of case %s is in force%s and the case is not public: its advisory can be published once the embargo has ended (or been terminated), or once the case is public: publish it then", c.ID, end)
	}
	return ""
}

// cpePattern is the start of a CPE name: 2.3 formatted string or 2.2 URI.
var cpePattern = regexp.MustCompile(`^cpe:(2\.3:[aho\*\-](:[^:\s]+){10}|/[aho](:[^:\s]*){0,6})$`)

// CheckPURL returns why s is not a package URL, or nil.
func CheckPURL(s string) error {
	if len(s) > maxIdentifier {
		return fmt.Errorf("the package URL is longer than %d bytes", maxIdentifier)
	}
	p, err := packageurl.FromString(s)
	if err != nil {
		return fmt.Errorf("%q is not a package URL (pkg:TYPE/NAMESPACE/NAME@VERSION): %v", problem.Clip(s, 200), err)
	}
	if p.Type == "" || p.Name == "" {
		return fmt.Errorf("%q is not a package URL: it needs a type and a name", problem.Clip(s, 200))
	}
	return nil
}

// CheckVersions returns why s is not a product's versions, or nil: "< V",
// "<= V" or one version V, which holds no space, comma or comparison
// sign. The advisory's documents read these three forms only; anything
// else would reach a CVE or OSV record as the name of a single version.
func CheckVersions(s string) error {
	v := strings.TrimSpace(s)
	if v == "" {
		return nil
	}
	if rest, ok := strings.CutPrefix(v, "<="); ok {
		v = strings.TrimSpace(rest)
	} else if rest, ok := strings.CutPrefix(v, "<"); ok {
		v = strings.TrimSpace(rest)
	}
	if v == "" || strings.ContainsAny(v, " \t\r\n,<>=|") {
		return fmt.Errorf("versions %q are not \"< V\", \"<= V\" or one version V", problem.Clip(s, 80))
	}
	return nil
}

// CheckCPE returns why s is not a CPE name, or nil.
func CheckCPE(s string) error {
	if len(s) > maxIdentifier || !cpePattern.MatchString(s) {
		return fmt.Errorf("%q is not a CPE name: want cpe:2.3:PART:VENDOR:PRODUCT:VERSION followed by seven more fields, or a CPE 2.2 URI cpe:/PART:VENDOR:PRODUCT", problem.Clip(s, 200))
	}
	return nil
}

// addProduct records a vendor's statement of a product's status.
func (c *Case) addProduct(p *Participant, act *vocab.Activity, at time.Time) error {
	ps, ok := act.Object.Object.(*vocab.ProductStatus)
	if !ok {
		return problem.Unprocessable("the product added to case %s must be an inline ProductStatus", c.ID)
	}
	name := strings.TrimSpace(ps.Name)
	if name == "" || len(name) > maxProductField {
		return problem.Unprocessable("a product needs a name of 1 to %d bytes", maxProductField)
	}
	vendor := c.Participant(ps.Vendor)
	if ps.Vendor == "" || vendor == nil || vendor.Removed {
		return problem.Unprocessable("the vendor of product %q, %q, is not a participant of case %s", name, problem.Clip(ps.Vendor, 200), c.ID)
	}
	if p.Actor != ps.Vendor && p.Actor != c.Owner {
		return problem.Forbidden("%s states the status of products of %s; only the vendor itself or the case owner %s does", p.Actor, ps.Vendor, c.Owner)
	}
	switch ps.Status {
	case ProductAffected, ProductFixed, ProductNotAffected, ProductUnderInvestigation:
	default:
		return problem.Unprocessable("product status %q is not one of affected, fixed, not-affected, under-investigation", problem.Clip(ps.Status, 60))
	}
	if ps.Justification != "" {
		if ps.Status != ProductNotAffected {
			return problem.Unprocessable("a justification is given for a product that is not affected, not for %s", ps.Status)
		}
		if !slices.Contains(justifications, ps.Justification) {
			return problem.Unprocessable("justification %q is not one of %s", problem.Clip(ps.Justification, 80), strings.Join(justifications, ", "))
		}
	}
	if ps.PURL != "" {
		if err := CheckPURL(ps.PURL); err != nil {
			return problem.Unprocessable("%v", err)
		}
	}
	if ps.CPE != "" {
		if err := CheckCPE(ps.CPE); err != nil {
			return problem.Unprocessable("%v", err)
		}
	}
	if len(ps.Versions) > maxProductField || len(ps.Content) > maxAdvisoryText {
		return problem.Unprocessable("the versions (at most %d bytes) or the statement (at most %d) of product %q are too long", maxProductField, maxAdvisoryText, name)
	}
	prod := Product{Vendor: ps.Vendor, Name: name, PURL: ps.PURL, CPE: ps.CPE, Versions: strings.TrimSpace(ps.Versions),
		Status: ps.Status, Justification: ps.Justification, Statement: ps.Content, By: p.Actor, At: at}
	for i, old := range c.Products {
		if old.key() == prod.key() {
			c.Products = slices.Clone(c.Products)
			c.Products[i] = prod
			return nil
		}
	}
	if len(c.Products) >= MaxProducts {
		return problem.Conflict("case %s states %d products already, the most a case may", c.ID, MaxProducts)
	}
	c.Products = append(slices.Clip(c.Products), prod)
	return nil
}

// publish records the owner's Create(Article) (first) or Update(Article)
// (revise) of the case's advisory.
func (c *Case) publish(p *Participant, act *vocab.Activity, revise bool, at time.Time) error {
	if p.Actor != c.Owner {
		return problem.Forbidden("only the case owner %s publishes the advisory of case %s", c.Owner, c.ID)
	}
	if why := c.PublicationBlocked(); why != "" {
		return problem.Conflict("%s", why)
	}
	art, ok := act.Object.Object.(*vocab.GenericObject)
	if !ok || art.Type != "Article" || art.ID == "" {
		return problem.Unprocessable("the advisory of case %s is an inline Article with an id", c.ID)
	}
	if strings.TrimSpace(art.Name) == "" || len(art.Name) > maxProductField*2 || len(art.Content) > maxAdvisoryText || len(art.Summary) > maxAdvisoryText {
		return problem.Unprocessable("the advisory needs a name (title) of 1 to %d bytes, and a summary and content of at most %d", maxProductField*2, maxAdvisoryText)
	}
	if u, err := url.Parse(art.ID); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return problem.Unprocessable("the Article %q of case %s is not an http(s) URL: an advisory is published as a page its publisher's server serves, which the other servers link",
			problem.Clip(art.ID, 200), c.ID)
	}
	if !urlhost.Same(art.ID, p.Actor) {
		return problem.Unprocessable("the Article %s of case %s is not on the server of its publisher %s: an owner publishes its advisory as an Article of its own server",
			problem.Clip(art.ID, 200), c.ID, p.Actor)
	}
	adv := c.advisory()
	// The owner that published the latest revision revises its Article;
	// an owner that took the case over publishes an Article of its own.
	takenOver := adv.ArticleID != "" && adv.Revisions[len(adv.Revisions)-1].By != p.Actor && !urlhost.Same(adv.ArticleID, p.Actor)
	switch {
	case !revise && adv.ArticleID != "" && !takenOver:
		return problem.Conflict("the advisory of case %s is published already (%s): a revision is an Update of it", c.ID, adv.ArticleID)
	case revise && adv.ArticleID == "":
		return problem.Conflict("the advisory of case %s is not published yet: publish it first (Create)", c.ID)
	case revise && takenOver:
		return problem.Conflict("the advisory of case %s is the Article %s of %s on another server: a new owner publishes its revision as an Article of its own (Create)",
			c.ID, adv.ArticleID, adv.Revisions[len(adv.Revisions)-1].By)
	case revise && art.ID != adv.ArticleID:
		return problem.Unprocessable("the advisory of case %s is %s, not %s", c.ID, adv.ArticleID, problem.Clip(art.ID, 200))
	}
	if len(adv.Revisions) >= MaxRevisions {
		return problem.Conflict("the advisory of case %s has %d revisions, the most it may", c.ID, MaxRevisions)
	}
	// Revisions recorded before revisions named their Article name it
	// now, before the advisory's Article may change.
	for i := range adv.Revisions {
		if adv.Revisions[i].Article == "" {
			adv.Revisions[i].Article = adv.ArticleID
		}
	}
	rev := Revision{Number: len(adv.Revisions) + 1, At: at, By: p.Actor, ActivityID: act.ID, Article: art.ID,
		Text:     Text{Title: strings.TrimSpace(art.Name), Summary: art.Summary, Details: art.Content},
		Products: slices.Clone(c.Products), VulnerabilityIDs: slices.Clone(c.VulnerabilityIDs),
		Reports: len(c.Reports), CaseOpened: c.Published, PXA: c.PXA}
	for _, q := range c.Participants {
		if !q.Removed {
			rev.Involvements = append(rev.Involvements, Involvement{Actor: q.Actor, Name: q.Contact.Name, Roles: q.Roles,
				ParticipantState: q.ParticipantState, Since: q.JoinedAt})
		}
	}
	adv.ArticleID = art.ID
	adv.Revisions = append(slices.Clip(adv.Revisions), rev)
	c.Advisory = adv
	return nil
}

// advisory returns a copy of the case's advisory record to change.
func (c *Case) advisory() *Advisory {
	if c.Advisory == nil {
		return &Advisory{}
	}
	a := *c.Advisory
	a.Revisions = slices.Clone(a.Revisions)
	if a.Draft != nil {
		d := *a.Draft
		d.Reviews = slices.Clone(d.Reviews)
		a.Draft = &d
	}
	if a.PublishAt != nil {
		pt := *a.PublishAt
		pt.Accepted = slices.Clone(pt.Accepted)
		a.PublishAt = &pt
	}
	return &a
}

// noteExtensions applies what a note says of the advisory beside its text
// (see the top of this file): a shared draft, a review, a proposed or
// accepted publication time. It runs before the note is added, so that a
// malformed one is refused whole.
func (c *Case) noteExtensions(p *Participant, note *vocab.GenericObject, at time.Time) error {
	draft, hasDraft := articleAttachment(note)
	review, hasReview := stringExtra(note, "review")
	when, hasTime := stringExtra(note, "publicationTime")
	if !hasDraft && !hasReview && !hasTime {
		return nil
	}
	adv := c.advisory()
	if hasDraft {
		if p.Actor != c.Owner {
			return problem.Forbidden("only the case owner %s shares a draft advisory of case %s", c.Owner, c.ID)
		}
		reviewers := note.Audience.IDs()
		if len(reviewers) == 0 || len(reviewers) > MaxReviewers {
			return problem.Unprocessable("a shared draft names 1 to %d reviewers in its audience", MaxReviewers)
		}
		d := &Draft{NoteID: note.ID, By: p.Actor, At: at, Text: draft}
		for _, r := range reviewers {
			q := c.Participant(r)
			if q == nil || q.Removed {
				return problem.Unprocessable("reviewer %s is not a participant of case %s", problem.Clip(r, 200), c.ID)
			}
			if r == c.Owner || slices.ContainsFunc(d.Reviews, func(x Review) bool { return x.Actor == r }) {
				continue
			}
			d.Reviews = append(d.Reviews, Review{Actor: r, State: ReviewInvited})
		}
		if len(d.Reviews) == 0 {
			return problem.Unprocessable("a shared draft names reviewers other than the owner")
		}
		adv.Draft = d
	}
	if hasReview {
		if review != ReviewApproved && review != ReviewChangesRequested {
			return problem.Unprocessable("a review is %q or %q, not %q", ReviewApproved, ReviewChangesRequested, problem.Clip(review, 60))
		}
		if adv.Draft == nil || note.InReplyTo.ID() != adv.Draft.NoteID {
			return problem.Conflict("the review answers no draft of case %s shared for review (inReplyTo must be the draft's note)", c.ID)
		}
		i := slices.IndexFunc(adv.Draft.Reviews, func(x Review) bool { return x.Actor == p.Actor })
		if i < 0 {
			return problem.Forbidden("%s was not asked to review the draft advisory of case %s", p.Actor, c.ID)
		}
		adv.Draft.Reviews[i] = Review{Actor: p.Actor, State: review, Comment: note.Content, At: at}
	}
	if hasTime {
		t, err := time.Parse(time.RFC3339, when)
		if err != nil {
			return problem.Unprocessable("publicationTime %q is not an RFC 3339 time", problem.Clip(when, 60))
		}
		t = t.UTC()
		switch {
		case note.InReplyTo.IsZero():
			if p.Actor != c.Owner {
				return problem.Forbidden("only the case owner %s proposes the publication time of case %s", c.Owner, c.ID)
			}
			adv.PublishAt = &PublicationTime{NoteID: note.ID, By: p.Actor, Time: t}
		case adv.PublishAt != nil && note.InReplyTo.ID() == adv.PublishAt.NoteID:
			if !t.Equal(adv.PublishAt.Time) {
				return problem.Conflict("the proposed publication time of case %s is %s, not %s", c.ID, adv.PublishAt.Time.Format(time.RFC3339), t.Format(time.RFC3339))
			}
			if !slices.Contains(adv.PublishAt.Accepted, p.Actor) && p.Actor != adv.PublishAt.By {
				adv.PublishAt.Accepted = append(adv.PublishAt.Accepted, p.Actor)
			}
		default:
			return problem.Conflict("the publication time answers no proposal of case %s (inReplyTo must be the proposal's note)", c.ID)
		}
	}
	c.Advisory = adv
	return nil
}

// checkProductVersions refuses a product status whose versions are not a
// form the advisory's documents read (CheckVersions). Like the embargo's
// length it is checked by the sender's node and by the Case Actor, never
// by Apply: a replica applies what its Case Actor recorded, and one of an
// older release took any versions.
func checkProductVersions(m Message) error {
	if m.Class.Semantic != vocab.AddProductStatusToCase {
		return nil
	}
	ps, ok := m.Activity.Object.Object.(*vocab.ProductStatus)
	if !ok {
		return nil
	}
	if err := CheckVersions(ps.Versions); err != nil {
		return problem.Unprocessable("the versions of product %q: %v", problem.Clip(strings.TrimSpace(ps.Name), 200), err)
	}
	return nil
}

// checkProductCPE refuses a product status whose CPE name the advisory's
// documents cannot carry (advisory.IsCPE: CSAF and CVE JSON take a CPE
// 2.3 formatted string with its special characters escaped, or a CPE 2.2
// URI), which they would leave out. Like checkProductVersions it is
// checked by the sender's node and by the Case Actor, never by Apply.
func checkProductCPE(m Message) error {
	if m.Class.Semantic != vocab.AddProductStatusToCase {
		return nil
	}
	ps, ok := m.Activity.Object.Object.(*vocab.ProductStatus)
	if !ok || ps.CPE == "" || advisory.IsCPE(ps.CPE) {
		return nil
	}
	return problem.Unprocessable("the CPE name of product %q, %q, is not one an advisory carries: write a CPE 2.3 name with its special characters escaped (notepad\\+\\+ for notepad++) and a language such as en or *, or a CPE 2.2 URI",
		problem.Clip(strings.TrimSpace(ps.Name), 200), problem.Clip(ps.CPE, 200))
}

// checkEmbargoAndAdvisory keeps an embargo and a published advisory
// apart: an advisory is not published while an embargo proposal waits for
// answers (it is answered first), and once it is published no embargo is
// proposed or accepted, since it would keep from the public what the
// public reads already. Like checkProductVersions it is checked by the
// sender's node and by the Case Actor, never by Apply: a replica applies
// what its Case Actor recorded, and one of an older release allowed both.
func checkEmbargoAndAdvisory(c *Case, m Message) error {
	switch m.Class.Semantic {
	case vocab.InviteToEmbargoOnCase, vocab.AcceptInviteToEmbargoOnCase:
		if c.advisoryPublished() {
			first := c.Advisory.Revisions[0]
			return problem.Conflict("the advisory of case %s is public since %s: an embargo cannot keep from the public what it reads already",
				c.ID, first.At.UTC().Format(time.RFC3339))
		}
	case vocab.PublishAdvisory:
		if len(c.Proposals) > 0 {
			p := c.Proposals[0]
			return problem.Conflict("the embargo proposal %s by %s (to end %s) waits for answers in case %s: answer it (vultron embargo accept|reject) before publishing the advisory",
				p.InviteID, p.Terms.Proposer, p.Terms.End.UTC().Format(time.RFC3339), c.ID)
		}
	}
	return nil
}

// advisoryPublished reports whether the case's advisory is public: the
// case is no longer secret, whatever its case state says.
func (c *Case) advisoryPublished() bool {
	return c.Advisory != nil && len(c.Advisory.Revisions) > 0
}

// checkProposedTime refuses (422) a local actor's proposal of a
// publication time that has passed by now: a note's "publicationTime" in
// reply to nothing. Engine.checkCase runs it on what the node's own actors
// send; it is no rule of the case, so a proposal the Case Actor recorded
// applies whatever its time, on every replica, and may be accepted.
func checkProposedTime(m Message, now time.Time) error {
	if m.Class.Semantic != vocab.AddNoteToCase && m.Class.Semantic != vocab.CreateNote {
		return nil
	}
	note, ok := m.Activity.Object.Object.(*vocab.GenericObject)
	if !ok || note.Type != "Note" || !note.InReplyTo.IsZero() {
		return nil
	}
	when, ok := stringExtra(note, "publicationTime")
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339, when)
	if err != nil || !t.Before(now) {
		return nil // Apply says what is wrong with a malformed one
	}
	return problem.Unprocessable("the proposed publication time %s has passed (it is %s on this node); propose a time to come",
		t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
}

// articleAttachment returns the text of the Article a note carries as its
// attachment, the shared draft.
func articleAttachment(note *vocab.GenericObject) (Text, bool) {
	raw, ok := note.Extra["attachment"]
	if !ok {
		return Text{}, false
	}
	items, isList := raw.([]any)
	if !isList {
		items = []any{raw}
	}
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok || m["type"] != "Article" {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		t := Text{Title: strings.TrimSpace(s("name")), Summary: s("summary"), Details: s("content")}
		return t, t.Title != ""
	}
	return Text{}, false
}

func stringExtra(note *vocab.GenericObject, key string) (string, bool) {
	v, ok := note.Extra[key].(string)
	return v, ok
}
