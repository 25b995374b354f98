package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/vocab"
)

// caseActionGroup holds the actions of "vultron case" that send a message;
// list, show and ledger (cases.go) only read.
func caseActionGroup() actionGroup {
	onCase := func(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
		return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
			d, err := s.caseDetail(ctx, args[0])
			if err != nil {
				return nil, "", err
			}
			return vocab.Respond(typ, d.ID, d.ID), d.ID, nil
		}
	}
	return actionGroup{
		name: "case",
		description: "Report Management on a case and case management. CASE is a case id or a unique part of it.\n" +
			"Reading: \"vultron case list | show CASE | ledger CASE | wait CASE --until COND\".",
		actions: []actionSpec{
			{name: "engage", message: "RA", summary: "accept the case for action (also re-engage after defer; from RECEIVED it validates too)", args: "CASE", minArgs: 1, maxArgs: 1, build: onCase("Join")},
			{name: "defer", message: "RD", summary: "defer the case (from RECEIVED it validates too)", args: "CASE", minArgs: 1, maxArgs: 1, build: onCase("Ignore")},
			{name: "close", message: "RC", summary: "close the case for the acting participant; the owner's closing closes it for everyone", args: "CASE", minArgs: 1, maxArgs: 1, build: buildClose},
			{name: "note", message: "GI", summary: "add a note to the case", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.content, "content", "", "the note's text")
					fs.StringVar(&v.contentFile, "content-file", "", "a file holding the note's text")
				},
				build: buildNote},
			{name: "cve", message: "-", summary: "record the CVE id (and other ids) the case's vulnerability is known by", args: "CASE ID", minArgs: 2, maxArgs: 2,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.aliases, "aliases", "", "other ids it is known by, comma-separated (GHSA, OSV, a vendor's own)")
				},
				build: buildVulnerabilityIDs},
			{name: "transfer", message: "-", summary: "offer the case's ownership to a participant (owner only)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.to, "to", "", "the actor id (URL) of the new owner (required)")
				},
				build: buildTransfer},
			{name: "accept-transfer", message: "-", summary: "accept the ownership offered to the acting actor", args: "CASE", minArgs: 1, maxArgs: 1,
				build: answerTransfer("Accept")},
			{name: "reject-transfer", message: "-", summary: "decline the ownership offered to the acting actor", args: "CASE", minArgs: 1, maxArgs: 1,
				build: answerTransfer("Reject")},
			{name: "engagement", message: "-", summary: "leave active work keeping the embargo (--off), or return to it (--on)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.BoolVar(&v.off, "off", false, "leave active work: the node is then sent only what it still needs")
					fs.BoolVar(&v.on, "on", false, "return to active work")
					fs.StringVar(&v.reason, "reason", "", "why, for the other participants")
				},
				build: buildEngagement},
			{name: "link", message: "-", summary: "relate the case to another as its parent, child or sibling (owner only)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.parent, "parent", "", "the case that is this one's parent")
					fs.StringVar(&v.child, "child", "", "the case that is this one's child")
					fs.StringVar(&v.sibling, "sibling", "", "the case that is this one's sibling")
				},
				build: buildLink},
		},
	}
}

func buildNote(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	content, err := v.text("the note")
	if err != nil {
		return nil, "", err
	}
	if content == "" {
		return nil, "", usageError("give the note's text with --content or --content-file")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	return vocab.AddNote(d.ID, content), d.ID, nil
}

func buildTransfer(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.to == "" {
		return nil, "", usageError("give the new owner with --to URL")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	if _, err := participantOf(d, v.to); err != nil {
		return nil, "", err
	}
	return map[string]any{"type": "Offer", "object": d.ID, "target": v.to, "context": d.ID}, d.ID, nil
}

func answerTransfer(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		d, err := s.caseDetail(ctx, args[0])
		if err != nil {
			return nil, "", err
		}
		if d.Transfer == nil {
			return nil, "", fmt.Errorf("case %s has no open ownership transfer", d.ID)
		}
		return vocab.Respond(typ, d.Transfer.ID, d.ID), d.ID, nil
	}
}

// buildLink relates a case to another (Update of the case carrying
// parentCases, childCases or siblingCases). The other case is named by its
// id, or a unique part of the id of a case this node holds.
func buildLink(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	var relation, other string
	n := 0
	for _, r := range []struct{ name, value string }{{"parent", v.parent}, {"child", v.child}, {"sibling", v.sibling}} {
		if r.value != "" {
			relation, other, n = r.name, r.value, n+1
		}
	}
	if n != 1 {
		return nil, "", usageError("give one of --parent, --child or --sibling, naming the other case")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	if !strings.HasPrefix(other, "https://") && !strings.HasPrefix(other, "http://") {
		if other, err = s.resolveCase(ctx, other); err != nil {
			return nil, "", err
		}
	}
	return vocab.LinkCase(d.ID, relation, other), d.ID, nil
}

// buildEngagement declares the acting participant's case engagement.
func buildEngagement(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.off == v.on {
		return nil, "", usageError("give --off or --on")
	}
	d, pid, err := myParticipant(ctx, s, args[0])
	if err != nil {
		return nil, "", err
	}
	return vocab.DeclareEngagement(d.ID, pid, v.on, v.reason), d.ID, nil
}

// buildVulnerabilityIDs records the ids the case's vulnerability is known
// by (Add(VulnerabilityRecord)).
func buildVulnerabilityIDs(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	var aliases []string
	for _, a := range strings.Split(v.aliases, ",") {
		if a = strings.TrimSpace(a); a != "" {
			aliases = append(aliases, a)
		}
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	return vocab.AddVulnerabilityIDs(d.ID, args[1], aliases), d.ID, nil
}

// mayClose reports whether actor's report in the case is in a state its
// closing (RC) leaves: INVALID, ACCEPTED or DEFERRED. From any other the
// node refuses the close, and there is nothing to warn of.
func mayClose(d api.CaseDetail, actor string) bool {
	for _, p := range d.Participants {
		if p.Actor == actor {
			switch p.RMState {
			case "INVALID", "ACCEPTED", "DEFERRED":
				return true
			}
		}
	}
	return false
}

// buildClose builds the acting participant's Leave of a case (RC). The
// owner's closes the case for every participant (the Case Actor records
// its closing next): the command says so, and how to keep the case open.
func buildClose(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	me, err := s.me(ctx)
	if err != nil {
		return nil, "", err
	}
	if me == d.Owner && d.Closure == nil && mayClose(d, me) {
		fmt.Fprintf(s.env.stderr, "%s owns case %s: its closing closes it for every participant, and the case then takes only the others' closing of their own parts. To keep it open without %s, transfer the ownership first (vultron case transfer CASE --to ACTOR).\n",
			me, d.ID, me)
	}
	return vocab.Respond("Leave", d.ID, d.ID), d.ID, nil
}
