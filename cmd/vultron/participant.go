package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/vocab"
)

// participantGroup is "vultron participant": who takes part in a case.
func participantGroup() actionGroup {
	actorFlag := func(fs *flag.FlagSet, v *actionValues) {
		fs.StringVar(&v.actor, "actor", "", "the actor id (URL) concerned (required)")
	}
	actorAndRoles := func(fs *flag.FlagSet, v *actionValues) {
		actorFlag(fs, v)
		fs.StringVar(&v.roles, "role", "", "CVD roles, comma-separated (the actor is invited as vendor when none is given): "+cvdRoleNames())
	}
	inviteFlags := func(fs *flag.FlagSet, v *actionValues) {
		fs.StringVar(&v.caseRef, "case", "", "the case of the invitation, when several are pending")
	}
	return actionGroup{
		name: "participant",
		description: "Case participants: invitations (an RS to the invitee, carrying the embargo in force),\n" +
			"suggestions of actors to invite, and removal; \"-\" marks case management without a\n" +
			"message type of its own.\n" +
			"CASE is a case id or a unique part of it. INVITE is the id of the Case Actor's invitation\n" +
			"in the acting actor's inbox, or of its case (or a unique part of either), needed only\n" +
			"when several are pending.",
		actions: []actionSpec{
			{name: "invite", message: "RS", summary: "invite an actor to the case (owner only)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: actorAndRoles, build: buildInvite},
			{name: "accept-invite", message: "-", summary: "accept an invitation to a case, and the embargo in force it carries, if any", args: "[INVITE|CASE]", minArgs: 0, maxArgs: 1,
				flags: inviteFlags, build: answerInvite("Accept")},
			{name: "reject-invite", message: "-", summary: "decline an invitation to a case", args: "[INVITE|CASE]", minArgs: 0, maxArgs: 1,
				flags: inviteFlags, build: answerInvite("Reject"), noCase: true},
			{name: "suggest", message: "-", summary: "suggest to the owner that an actor be invited", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: actorAndRoles, build: buildSuggest},
			{name: "accept-suggestion", message: "-", summary: "accept the Case Actor's offer of a suggested participant (owner only; the Case Actor invites)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: actorFlag, build: answerSuggestion("Accept")},
			{name: "reject-suggestion", message: "-", summary: "reject the Case Actor's offer of a suggested participant (owner only)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: actorFlag, build: answerSuggestion("Reject")},
			{name: "remove", message: "-", summary: "remove a participant from the case (owner only)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: actorFlag, build: buildRemove},
		},
	}
}

func runParticipant(ctx context.Context, env *environment, args []string) error {
	return participantGroup().run(ctx, env, args)
}

func needActor(v *actionValues) error {
	if v.actor == "" {
		return usageError("give the actor with --actor URL")
	}
	if !strings.HasPrefix(v.actor, "https://") && !strings.HasPrefix(v.actor, "http://") {
		return usageError("--actor must be an actor id (a URL), not %q", v.actor)
	}
	return nil
}

// cvdRoleNames lists the CVD roles, for the help of --role.
func cvdRoleNames() string {
	var names []string
	for _, r := range cvdstate.Roles() {
		names = append(names, r.String())
	}
	return strings.Join(names, ", ")
}

// rolesList returns the CVD roles of --role, comma-separated, in their wire
// spelling; a role that is not a CVD role is a usage error, found before
// anything is sent.
func rolesList(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		role, err := vocab.NormalizeRole(r)
		if err != nil {
			return nil, usageError("--role: %w", err)
		}
		out = append(out, role)
	}
	return out, nil
}

func buildInvite(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if err := needActor(v); err != nil {
		return nil, "", err
	}
	roles, err := rolesList(v.roles)
	if err != nil {
		return nil, "", err
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	return vocab.InviteToCase(d.ID, v.actor, roles), d.ID, nil
}

func buildSuggest(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if err := needActor(v); err != nil {
		return nil, "", err
	}
	roles, err := rolesList(v.roles)
	if err != nil {
		return nil, "", err
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	act := map[string]any{"type": "Offer", "object": v.actor, "target": d.ID, "context": d.ID}
	if len(roles) > 0 {
		act["roles"] = roles
	}
	return act, d.ID, nil
}

func answerSuggestion(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
		d, err := s.caseDetail(ctx, args[0])
		if err != nil {
			return nil, "", err
		}
		var ids []string
		for _, sg := range d.Suggestions {
			if v.actor == "" || sg.Actor == v.actor {
				// The owner answers the Case Actor's offer of a participant
				// for the suggestion; a suggestion from before that offer
				// is answered directly.
				id := sg.Offered
				if id == "" {
					id = sg.ID
				}
				if id != "" {
					ids = append(ids, id)
				}
			}
		}
		switch len(ids) {
		case 0:
			return nil, "", fmt.Errorf("case %s has no open suggestion%s", d.ID, forActor(v.actor))
		case 1:
			return vocab.Respond(typ, ids[0], d.ID), d.ID, nil
		}
		return nil, "", fmt.Errorf("case %s has %d open suggestions; name the suggested actor with --actor", d.ID, len(ids))
	}
}

func forActor(actor string) string {
	if actor == "" {
		return ""
	}
	return " of " + actor
}

func buildRemove(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if err := needActor(v); err != nil {
		return nil, "", err
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	pid, err := participantOf(d, v.actor)
	if err != nil {
		return nil, "", err
	}
	return map[string]any{"type": "Remove", "object": pid, "target": d.ID, "context": d.ID}, d.ID, nil
}

// answerInvite answers a Case Actor's invitation of the acting actor, as
// the node lists them (GET /actors/{name}/invitations).
func answerInvite(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
		key := ""
		if len(args) == 1 {
			key = args[0]
		}
		var list api.InvitationList
		if err := s.c.do(ctx, "GET", "/actors/"+url.PathEscape(s.as)+"/invitations", nil, &list); err != nil {
			return nil, "", fmt.Errorf("read the invitations of %s: %w", s.as, err)
		}
		type invitation struct{ id, caseID string }
		var found []invitation
		accepted := 0
		for _, inv := range list.Invitations {
			if key != "" && inv.ID == key {
				found = []invitation{{inv.ID, inv.Case}}
				break
			}
			// The argument names the invitation or, as every other
			// participant action's does, its case.
			if (key == "" || strings.Contains(inv.ID, key) || strings.Contains(inv.Case, key)) && (v.caseRef == "" || strings.Contains(inv.Case, v.caseRef)) {
				if inv.Accepted {
					accepted++ // answered: the invitee takes part in the case
					continue
				}
				found = append(found, invitation{inv.ID, inv.Case})
			}
		}
		switch len(found) {
		case 0:
			if accepted > 0 {
				return nil, "", fmt.Errorf("%s accepted already every invitation to a case in its inbox%s, and takes part in the case (vultron case list)", s.as, matching(key, v.caseRef))
			}
			return nil, "", fmt.Errorf("no invitation of %s to a case is in its inbox%s", s.as, matching(key, v.caseRef))
		case 1:
			// Accepting makes the invitee a participant, whose node then
			// keeps a replica that records the acceptance; one that
			// declines never holds the case, so there is nothing to wait
			// for or show.
			if typ == "Accept" {
				return map[string]any{"type": typ, "object": found[0].id}, found[0].caseID, nil
			}
			return map[string]any{"type": typ, "object": found[0].id}, "", nil
		}
		return nil, "", fmt.Errorf("%d invitations of %s match; give the invitation's id or --case", len(found), s.as)
	}
}

func matching(key, caseRef string) string {
	var parts []string
	if key != "" {
		parts = append(parts, fmt.Sprintf("matching %q", key))
	}
	if caseRef != "" {
		parts = append(parts, fmt.Sprintf("for a case matching %q", caseRef))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}
