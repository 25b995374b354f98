package main

import (
	"context"
	"fmt"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/vocab"
)

// statusGroup is "vultron status": the Case State (CS) events a
// participant reports, CF, CD, CP, CX and CA.
func statusGroup() actionGroup {
	return actionGroup{
		name: "status",
		description: "Case State (CS): report what happened. fix-ready changes the acting vendor's own vfd\n" +
			"state; fix-deployed is a deployer's (its d → D, or a vendor's VFd → VFD when it deploys\n" +
			"too: a participant with the deployer role, invited with --role vendor,deployer or served\n" +
			"as --actor NAME:TYPE:vendor|deployer); public, exploit-public and attacks change the\n" +
			"case's pxa state for everyone. CASE is a case id or a unique part of it.",
		actions: []actionSpec{
			{name: "fix-ready", message: "CF", summary: "the fix is ready (vfd → VFd)", args: "CASE", minArgs: 1, maxArgs: 1, build: vfdStatus("VFd")},
			{name: "fix-deployed", message: "CD", summary: "the fix is deployed (a participant with the deployer role: d → D, or VFd → VFD)", args: "CASE", minArgs: 1, maxArgs: 1, build: vfdStatus("VFD")},
			{name: "public", message: "CP", summary: "the vulnerability is public (p → P)", args: "CASE", minArgs: 1, maxArgs: 1, build: pxaStatus(cvdstate.PXAPublic)},
			{name: "exploit-public", message: "CX", summary: "an exploit is public (x → X)", args: "CASE", minArgs: 1, maxArgs: 1, build: pxaStatus(cvdstate.PXAExploit)},
			{name: "attacks", message: "CA", summary: "attacks were observed (a → A)", args: "CASE", minArgs: 1, maxArgs: 1, build: pxaStatus(cvdstate.PXAAttacks)},
		},
	}
}

func runStatus(ctx context.Context, env *environment, args []string) error {
	return statusGroup().run(ctx, env, args)
}

// myParticipant returns the case and the acting actor's participant in it.
func myParticipant(ctx context.Context, s *session, caseKey string) (api.CaseDetail, string, error) {
	me, err := s.me(ctx)
	if err != nil {
		return api.CaseDetail{}, "", err
	}
	d, err := s.caseDetail(ctx, caseKey)
	if err != nil {
		return api.CaseDetail{}, "", err
	}
	pid, err := participantOf(d, me)
	if err != nil {
		return api.CaseDetail{}, "", err
	}
	return d, pid, nil
}

func vfdStatus(vfd string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		d, pid, err := myParticipant(ctx, s, args[0])
		if err != nil {
			return nil, "", err
		}
		return vocab.ReportFixState(d.ID, pid, vfd), d.ID, nil
	}
}

// pxaStatus reports that one of the case's p, x, a events happened: the
// new pxa state is the current one with that bit raised.
func pxaStatus(event cvdstate.PXA) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		d, pid, err := myParticipant(ctx, s, args[0])
		if err != nil {
			return nil, "", err
		}
		pxa, err := cvdstate.ParsePXA(d.PXAState)
		if err != nil {
			return nil, "", fmt.Errorf("case %s has an unexpected pxa state %q", d.ID, d.PXAState)
		}
		return vocab.ReportCaseState(d.ID, pid, (pxa | event).String()), d.ID, nil
	}
}
