package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/vocab"
)

// embargoGroup is "vultron embargo": Embargo Management (EM) on a case.
func embargoGroup() actionGroup {
	timeFlags := func(fs *flag.FlagSet, v *actionValues) {
		fs.StringVar(&v.end, "end", "", "when the embargo ends, RFC 3339 (e.g. 2026-12-24T00:00:00Z)")
		embargoDaysFlag(fs, v, "days", "the embargo ends this many days from now, a positive whole number (instead of --end)")
	}
	return actionGroup{
		name: "embargo",
		description: "Embargo Management (EM) on a case. CASE is a case id or a unique part of it;\n" +
			"PROPOSAL is the id of the proposal's Invite, needed only when several are pending.",
		actions: []actionSpec{
			{name: "propose", message: "EP/EV", summary: "propose an embargo (a revision when one is active)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: timeFlags, build: buildProposal(false)},
			{name: "revise", message: "EV", summary: "propose to revise the active embargo", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: timeFlags, build: buildProposal(true)},
			{name: "accept", message: "EA/EC", summary: "accept a proposed embargo or revision", args: "CASE [PROPOSAL]", minArgs: 1, maxArgs: 2,
				build: answerProposal("Accept")},
			{name: "reject", message: "ER/EJ", summary: "reject a proposed embargo or revision", args: "CASE [PROPOSAL]", minArgs: 1, maxArgs: 2,
				build: answerProposal("Reject")},
			{name: "terminate", message: "ET", summary: "terminate the active embargo (any participant)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.reason, "reason", "", "why the embargo ends early; the embargo's history keeps it")
				},
				build: buildTerminate},
			{name: "withdraw", message: "ET/ER", summary: "declare the acting participant will not honour the embargo (it is torn down)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.reason, "reason", "", "why, for the owner and the other participants")
				},
				build: buildWithdraw},
		},
	}
}

func runEmbargo(ctx context.Context, env *environment, args []string) error {
	return embargoGroup().run(ctx, env, args)
}

// embargoEnd reads --end or --days (daysSet says whether --days was
// given, so that --days 0 is refused rather than taken for no --days).
func embargoEnd(v *actionValues, daysSet bool, now time.Time) (time.Time, error) {
	end, err := endFlags(v, daysSet, now, "--end", "--days")
	if err == nil && end.IsZero() {
		err = usageError("give the embargo's end with --end TIME or --days N")
	}
	return end, err
}

// endFlags reads an embargo's end from v.end (an RFC 3339 time, given with
// the flag endName) or v.days (days from now, given with daysName when
// daysSet); zero when neither is given.
func endFlags(v *actionValues, daysSet bool, now time.Time, endName, daysName string) (time.Time, error) {
	switch {
	case v.end != "" && daysSet:
		return time.Time{}, usageError("give %s or %s, not both", endName, daysName)
	case daysSet && v.days <= 0:
		return time.Time{}, usageError("%s must be a positive number of days, not %d", daysName, v.days)
	case v.end != "":
		t, err := time.Parse(time.RFC3339, v.end)
		if err != nil {
			return time.Time{}, usageError("%s must be an RFC 3339 time such as 2026-12-24T00:00:00Z, not %q", endName, v.end)
		}
		return t.UTC(), nil
	case daysSet:
		return now.Add(time.Duration(v.days) * 24 * time.Hour).UTC().Truncate(time.Second), nil
	}
	return time.Time{}, nil
}

// embargoDaysFlag registers a flag of a whole number of days into v.days,
// noting in v.daysSet that it was given.
func embargoDaysFlag(fs *flag.FlagSet, v *actionValues, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number of days", s)
		}
		v.days, v.daysSet = n, true
		return nil
	})
}

func buildProposal(revise bool) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
		now := time.Now().UTC().Truncate(time.Second)
		end, err := embargoEnd(v, v.daysSet, now)
		if err != nil {
			return nil, "", err
		}
		d, err := s.caseDetail(ctx, args[0])
		if err != nil {
			return nil, "", err
		}
		if revise && d.EMState != "ACTIVE" && d.EMState != "REVISE" {
			return nil, "", fmt.Errorf("case %s has no active embargo to revise (EM %s); use \"embargo propose\"", d.ID, d.EMState)
		}
		v.message = proposalMessage(d.EMState)
		return vocab.ProposeEmbargo(d.ID, now, end), d.ID, nil
	}
}

func answerProposal(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
		d, err := s.caseDetail(ctx, args[0])
		if err != nil {
			return nil, "", err
		}
		var invite string
		switch {
		case len(args) == 2:
			for _, p := range d.Proposals {
				if p.InviteID == args[1] || strings.Contains(p.InviteID, args[1]) {
					if invite != "" {
						return nil, "", fmt.Errorf("%q matches several pending proposals of case %s; give more of the id", args[1], d.ID)
					}
					invite = p.InviteID
				}
			}
			if invite == "" {
				return nil, "", fmt.Errorf("case %s has no pending embargo proposal matching %q", d.ID, args[1])
			}
		case len(d.Proposals) == 1:
			invite = d.Proposals[0].InviteID
		case len(d.Proposals) == 0:
			return nil, "", fmt.Errorf("case %s has no pending embargo proposal (EM %s)", d.ID, d.EMState)
		default:
			ids := make([]string, len(d.Proposals))
			for i, p := range d.Proposals {
				ids[i] = p.InviteID
			}
			return nil, "", fmt.Errorf("case %s has %d pending proposals (%s); name one", d.ID, len(ids), strings.Join(ids, ", "))
		}
		v.message = answerMessage(typ, d.EMState)
		return vocab.Respond(typ, invite, d.ID), d.ID, nil
	}
}

// proposalMessage is the message a proposal is in EM state em: a
// revision (EV) of an embargo in force, else a proposal (EP).
func proposalMessage(em string) string {
	if em == "ACTIVE" || em == "REVISE" {
		return "EV"
	}
	return "EP"
}

// answerMessage is the message an answer (typ Accept or Reject) to a
// proposal is in EM state em: of a revision (EC, EJ) in REVISE, else of a
// proposal (EA, ER).
func answerMessage(typ, em string) string {
	switch {
	case typ == "Accept" && em == "REVISE":
		return "EC"
	case typ == "Accept":
		return "EA"
	case em == "REVISE":
		return "EJ"
	}
	return "ER"
}

func buildTerminate(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	if d.Embargo == nil || d.Embargo.ID == "" {
		return nil, "", fmt.Errorf("case %s has no embargo to terminate (EM %s)", d.ID, d.EMState)
	}
	return vocab.TerminateEmbargo(d.ID, d.Embargo.ID, v.reason), d.ID, nil
}

// buildWithdraw declares that the acting participant will not honour the
// case's embargo.
func buildWithdraw(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	d, pid, err := myParticipant(ctx, s, args[0])
	if err != nil {
		return nil, "", err
	}
	v.message = withdrawalMessage(d.EMState)
	return vocab.DeclareNonAdherence(d.ID, pid, v.reason), d.ID, nil
}

// withdrawalMessage is what a declaration of non-adherence does in EM state
// em: it terminates an embargo in force (ET), rejects a pending proposal
// (ER), and otherwise tears nothing down ("-": the participant declines).
func withdrawalMessage(em string) string {
	switch em {
	case "ACTIVE", "REVISE":
		return "ET"
	case "PROPOSED":
		return "ER"
	}
	return noMessage
}
