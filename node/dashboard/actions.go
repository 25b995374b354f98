package dashboard

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// What the case page offers is not decided here: each form's activity is
// built as the form would build it, classified as the outbox classifies
// it, and tried on a copy of the case with Case.Apply, the rule the Case
// Actor records by (cases.Case.Try). A form is shown only to the local
// actors for whom that succeeds, so a closed case shows none, an engaged
// participant no "engage", a vendor whose fix is ready no second "fix
// ready". Two steps the protocol allows but that change nothing a person
// means are left out on top: a participant other than the owner accepting
// its own proposal (proposing is consenting; the owner's acceptance is
// what puts terms in force), and a second proposal by a participant whose
// first is still open (it withdraws that one first).

// formActions are the case page's actions with fields of their own; the
// others are stepForms.
var formActions = []string{"propose-embargo", "invite", "note"}

// defaultEmbargoEnd is the end the proposal form suggests.
func defaultEmbargoEnd(now time.Time) string {
	return now.Add(90 * 24 * time.Hour).UTC().Format("2006-01-02")
}

// Offers is what the case page offers, and to whom.
type Offers struct {
	// As lists, for each action, the local actors that may take it now.
	As        map[string][]string
	Proposals []proposalOffer
	// Any is true when some form is offered.
	Any bool
	// Locals counts the local actors that take part in the case.
	Locals int
	// OwnerClose is the local owner offered "close", whose closing closes
	// the case for every participant (the Case Actor records the case's
	// closing next): the page says so beside the button. Empty otherwise.
	OwnerClose string
}

// For returns the offers of o that principal p may take: those of the
// actors it acts for, none for a viewer. o is shared between page views
// and stays as it is.
func (o Offers) For(p accounts.Principal) Offers {
	keep := func(as []string) []string {
		var out []string
		for _, a := range as {
			if p.ActsFor(a) {
				out = append(out, a)
			}
		}
		return out
	}
	out := Offers{As: map[string][]string{}, Locals: o.Locals}
	if o.OwnerClose != "" && p.ActsFor(o.OwnerClose) {
		out.OwnerClose = o.OwnerClose
	}
	for action, as := range o.As {
		if kept := keep(as); len(kept) > 0 {
			out.As[action] = kept
			out.Any = true
		}
	}
	for _, po := range o.Proposals {
		mine := proposalOffer{Proposal: po.Proposal}
		for _, a := range po.Answers {
			if a.As = keep(a.As); len(a.As) > 0 {
				mine.Answers = append(mine.Answers, a)
				out.Any = true
			}
		}
		out.Proposals = append(out.Proposals, mine)
	}
	return out
}

// stepForm is one of the case page's one-button forms.
type stepForm struct{ Action, Label, Meaning string }

// stepForms are the one-button forms, in the order shown.
var stepForms = []stepForm{
	{"engage", "Engage (RA)", "work on the report"},
	{"defer", "Defer (RD)", "put the report aside for now"},
	{"close", "Close (RC)", "take no further part in the case"},
	{"fix-ready", "Fix ready (CF)", "a fix is ready"},
	{"fix-deployed", "Fix deployed (CD)", "the fix is deployed"},
	{"public", "Public (CP)", "the public knows of the vulnerability; this ends an embargo"},
}

// proposalOffer is an open embargo proposal and the answers offered.
type proposalOffer struct {
	cases.Proposal
	Answers []answerForm
}

// answerForm is one answer to a proposal and the local actors that may
// give it.
type answerForm struct {
	Action, Class, Label, Meaning string
	As                            []string
}

// offerProbeInvitee is the actor the invitation form is tried with: an
// id that is never a participant (the .invalid domain cannot exist).
const offerProbeInvitee = "https://invitee.invalid/actors/probe"

// maxCachedOffers bounds the cases whose offers are kept.
const maxCachedOffers = 1000

// Offers returns what the case page offers for case c, worked out once
// per state of the case: trying every action costs a copy of the case each
// (BenchmarkCaseOffers), and what is allowed changes only with the ledger.
// The result is shared between page views and read only.
func (d *Dashboard) Offers(tx *store.ReadTx, c *cases.Case, now time.Time) Offers {
	key := fmt.Sprintf("%s %d %s", c.ID, c.LedgerLen, c.TailHash)
	if o, ok := d.offerCache.Get(key); ok {
		return o
	}
	o := d.ComputeOffers(tx, c, now)
	d.offerCache.Add(key, o)
	return o
}

// ComputeOffers works out the forms the case page shows for case c, which
// Offers keeps; it is exported so that its cost can be measured.
func (d *Dashboard) ComputeOffers(tx *store.ReadTx, c *cases.Case, now time.Time) Offers {
	out := Offers{As: map[string][]string{}}
	resolver := cases.NewResolver(tx)
	var locals []actor.Local
	for _, p := range c.Participants {
		if l, ok := d.cfg.LocalByID(p.Actor); ok && !p.Removed {
			locals = append(locals, l)
		}
	}
	allowed := func(l actor.Local, form url.Values) bool {
		act, _, err := d.buildCaseAction(c, l, form, now)
		if err != nil {
			return false
		}
		return d.tryAction(resolver, c, l, act, now) == nil
	}
	actions := slices.Clone(formActions)
	for _, f := range stepForms {
		actions = append(actions, f.Action)
	}
	out.Locals = len(locals)
	for _, l := range locals {
		for _, action := range actions {
			form := url.Values{"action": {action}, "end": {defaultEmbargoEnd(now)}, "actor": {offerProbeInvitee}, "content": {"-"}}
			if action == "propose-embargo" && slices.ContainsFunc(c.Proposals, func(p cases.Proposal) bool { return p.Terms.Proposer == l.ID }) {
				continue
			}
			if allowed(l, form) {
				out.As[action] = append(out.As[action], l.Name)
				out.Any = true
				if action == "close" && l.ID == c.Owner && c.Closure == nil {
					out.OwnerClose = l.Name
				}
			}
		}
	}
	for _, p := range c.Proposals {
		accept := answerForm{"accept-embargo", "accept-embargo", "Accept (EA)", "consent to these terms; the case owner's acceptance puts them in force", nil}
		reject := answerForm{"reject-embargo", "reject-embargo", "Reject (ER)", "refuse these terms; the case owner's refusal ends the proposal", nil}
		withdraw := answerForm{"reject-embargo", "withdraw-embargo", "Withdraw (ER)", "take back this proposal", nil}
		for _, l := range locals {
			form := url.Values{"proposal": {p.InviteID}}
			form.Set("action", "accept-embargo")
			if (l.ID != p.Terms.Proposer || l.ID == c.Owner) && allowed(l, form) {
				accept.As = append(accept.As, l.Name)
			}
			form.Set("action", "reject-embargo")
			switch {
			case !allowed(l, form):
			case l.ID == p.Terms.Proposer:
				withdraw.As = append(withdraw.As, l.Name)
			default:
				reject.As = append(reject.As, l.Name)
			}
		}
		po := proposalOffer{Proposal: p}
		for _, a := range []answerForm{accept, reject, withdraw} {
			if len(a.As) > 0 {
				po.Answers = append(po.Answers, a)
				out.Any = true
			}
		}
		out.Proposals = append(out.Proposals, po)
	}
	return out
}

// tryAction reads act as the outbox would (parse, fill in the ids,
// classify) and tries it on c.
func (d *Dashboard) tryAction(resolver cases.Resolver, c *cases.Case, l actor.Local, act map[string]any, now time.Time) error {
	if act["type"] == "Invite" && act["target"] != nil {
		// The outbox puts the invitee's document inline before it
		// classifies an invitation; the probe has no document to fetch.
		act["object"] = map[string]any{"type": "Organization", "id": act["object"]}
	}
	body, err := activityJSON(act)
	if err != nil {
		return err
	}
	doc, err := vocab.Parse(body)
	if err != nil {
		return err
	}
	a := doc.Activity()
	if a == nil {
		return problem.Unprocessable("not an activity")
	}
	a.ID = d.cfg.PublicURL + "/activities/offer-probe"
	a.Actor = vocab.RefTo(l.ID)
	if obj := a.Object.Object; obj != nil {
		if _, isActivity := obj.(*vocab.Activity); !isActivity && obj.Common().ID == "" {
			obj.Common().ID = d.cfg.PublicURL + "/objects/offer-probe"
		}
	}
	class := vocab.Classify(a, resolver)
	return c.TrySend(cases.EventType(class.Semantic), a, now)
}

// activityJSON is the body the outbox is given for act.
func activityJSON(act map[string]any) ([]byte, error) {
	act["@context"] = "https://www.w3.org/ns/activitystreams"
	body, err := json.Marshal(act)
	if err != nil {
		return nil, fmt.Errorf("dashboard: encode the activity: %w", err)
	}
	return body, nil
}

// noteLimit is how many bytes the text of a note in case caseID may take
// (as a JSON string, without its quotes): what the activity that adds it
// leaves of Config.MaxBody. The note form's text area takes as many
// characters: as many bytes as a line of plain text takes, fewer than
// text with line breaks, quotes or <, > and & (each escaped in JSON), which
// the server measures.
func (d *Dashboard) noteLimit(caseID string) int {
	empty, err := activityJSON(vocab.AddNote(caseID, ""))
	if err != nil {
		return 0
	}
	return max(0, int(d.cfg.MaxBody)-len(empty))
}

// jsonLen is how many bytes s takes as a JSON string, without its quotes.
func jsonLen(s string) int {
	b, err := json.Marshal(s)
	if err != nil {
		return len(s)
	}
	return len(b) - 2
}

// outcomeWords is what the page says of a form's activity: Done once this
// node's copy of the case recorded it, Sent (what was sent, a noun phrase
// that "sent" follows) when the Case Actor had not recorded it yet.
type outcomeWords struct{ Done, Sent string }

// buildCaseAction returns the activity a case form asks local actor l to
// send, and what to tell the person once it was recorded or sent.
func (d *Dashboard) buildCaseAction(c *cases.Case, l actor.Local, f url.Values, now time.Time) (map[string]any, outcomeWords, error) {
	var none outcomeWords
	switch f.Get("action") {
	case "propose-embargo":
		end, err := time.Parse("2006-01-02", f.Get("end"))
		if err != nil {
			return nil, none, problem.BadRequest("the embargo's end must be a date such as 2026-12-24")
		}
		day := end.Format("2006-01-02")
		if !end.After(now) {
			return nil, none, problem.BadRequest("the embargo would end on %s at 00:00 UTC, which has passed; choose a later date", day)
		}
		return vocab.ProposeEmbargo(c.ID, now, end), outcomeWords{"Embargo proposed, ending " + day + ".", "Embargo proposal (ending " + day + ")"}, nil
	case "accept-embargo", "reject-embargo":
		invite := f.Get("proposal")
		i := slices.IndexFunc(c.Proposals, func(p cases.Proposal) bool { return p.InviteID == invite })
		if i < 0 {
			return nil, none, problem.Conflict("that embargo proposal is no longer open")
		}
		switch {
		case f.Get("action") == "accept-embargo":
		case c.Proposals[i].Terms.Proposer == l.ID:
			// The proposer's own rejection takes its proposal back.
			return vocab.Respond("Reject", invite, c.ID), outcomeWords{"Embargo proposal withdrawn.", "Withdrawal of the embargo proposal"}, nil
		default:
			return vocab.Respond("Reject", invite, c.ID), outcomeWords{"Embargo proposal rejected.", "Rejection of the embargo proposal"}, nil
		}
		return vocab.Respond("Accept", invite, c.ID), outcomeWords{"Embargo proposal accepted.", "Acceptance of the embargo proposal"}, nil
	case "invite":
		actorID := strings.TrimSpace(f.Get("actor"))
		if u, err := url.Parse(actorID); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, none, problem.BadRequest("the actor to invite must be an actor id (a URL)")
		}
		var roles []string
		if role := f.Get("role"); role != "" {
			roles = []string{role}
		}
		return vocab.InviteToCase(c.ID, actorID, roles), outcomeWords{"Invited " + actorID + ".", "Invitation of " + actorID}, nil
	case "fix-ready", "fix-deployed":
		p := c.Participant(l.ID)
		if p == nil {
			return nil, none, problem.Conflict("%s is not a participant of this case", l.Name)
		}
		if f.Get("action") == "fix-ready" {
			return vocab.ReportFixState(c.ID, p.ID, "VFd"), outcomeWords{"Reported: fix ready (CF).", "Report of a fix ready (CF)"}, nil
		}
		return vocab.ReportFixState(c.ID, p.ID, "VFD"), outcomeWords{"Reported: fix deployed (CD).", "Report of a fix deployed (CD)"}, nil
	case "public":
		p := c.Participant(l.ID)
		if p == nil {
			return nil, none, problem.Conflict("%s is not a participant of this case", l.Name)
		}
		return vocab.ReportCaseState(c.ID, p.ID, (c.PXA | cvdstate.PXAPublic).String()),
			outcomeWords{"Reported: the vulnerability is public (CP).", "Report that the vulnerability is public (CP)"}, nil
	case "engage":
		return vocab.Respond("Join", c.ID, c.ID), outcomeWords{"Engaged (RA).", "Engagement (RA)"}, nil
	case "defer":
		return vocab.Respond("Ignore", c.ID, c.ID), outcomeWords{"Deferred (RD).", "Deferral (RD)"}, nil
	case "close":
		if l.ID == c.Owner && c.Closure == nil {
			return vocab.Respond("Leave", c.ID, c.ID), outcomeWords{"Closed the case for every participant: " + l.Name + ", its owner, left it (RC).",
				"Closing by " + l.Name + ", the owner, which closes the case for every participant (RC)"}, nil
		}
		return vocab.Respond("Leave", c.ID, c.ID), outcomeWords{"Closed for " + l.Name + " (RC).", "Closing for " + l.Name + " (RC)"}, nil
	case "note":
		content := strings.TrimSpace(f.Get("content"))
		if content == "" {
			return nil, none, problem.BadRequest("a note needs some text")
		}
		if n, most := jsonLen(content), d.noteLimit(c.ID); n > most {
			return nil, none, problem.TooLarge("the note is too long: it takes %d bytes, and a note in this case may take at most %d "+
				"(this node sends activities of at most %d bytes, its --max-body); nothing was sent", n, most, d.cfg.MaxBody)
		}
		return vocab.AddNote(c.ID, content), outcomeWords{"Note added.", "Note"}, nil
	}
	return nil, none, problem.BadRequest("unknown action %q", f.Get("action"))
}
