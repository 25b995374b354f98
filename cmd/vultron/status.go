package main

import (
	"context"
	"fmt"
	"strings"
)

// statusGroup is "vultron status": the Case State (CS) events a
// participant reports, CF, CD, CP, CX and CA.
func statusGroup() actionGroup {
	return actionGroup{
		name: "status",
		description: "Case State (CS): report what happened. fix-ready and fix-deployed change the acting\n" +
			"vendor's or deployer's own vfd state; public, exploit-public and attacks change the\n" +
			"case's pxa state for everyone. CASE is a case id or a unique part of it.",
		actions: []actionSpec{
			{name: "fix-ready", message: "CF", summary: "the fix is ready (vfd → VFd)", args: "CASE", minArgs: 1, maxArgs: 1, build: vfdStatus("VFd")},
			{name: "fix-deployed", message: "CD", summary: "the fix is deployed (vfd → VFD)", args: "CASE", minArgs: 1, maxArgs: 1, build: vfdStatus("VFD")},
			{name: "public", message: "CP", summary: "the vulnerability is public (p → P)", args: "CASE", minArgs: 1, maxArgs: 1, build: pxaStatus('P')},
			{name: "exploit-public", message: "CX", summary: "an exploit is public (x → X)", args: "CASE", minArgs: 1, maxArgs: 1, build: pxaStatus('X')},
			{name: "attacks", message: "CA", summary: "attacks were observed (a → A)", args: "CASE", minArgs: 1, maxArgs: 1, build: pxaStatus('A')},
		},
	}
}

func runStatus(ctx context.Context, env *environment, args []string) error {
	return statusGroup().run(ctx, env, args)
}

// participantStatus is the Add(ParticipantStatus) the acting actor sends
// about itself.
func participantStatus(ctx context.Context, s *session, caseKey string, status map[string]any) (map[string]any, string, error) {
	me, err := s.me(ctx)
	if err != nil {
		return nil, "", err
	}
	d, err := s.caseDetail(ctx, caseKey)
	if err != nil {
		return nil, "", err
	}
	pid, err := d.participantOf(me)
	if err != nil {
		return nil, "", err
	}
	status["type"] = "ParticipantStatus"
	status["context"] = pid
	return map[string]any{"type": "Add", "object": status, "target": pid, "context": d.ID}, d.ID, nil
}

func vfdStatus(vfd string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		return participantStatus(ctx, s, args[0], map[string]any{"vfdState": vfd})
	}
}

// pxaStatus reports that one of the case's p, x, a events happened: the
// new pxa state is the current one with that letter raised.
func pxaStatus(letter byte) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		d, err := s.caseDetail(ctx, args[0])
		if err != nil {
			return nil, "", err
		}
		pxa := []byte(d.PXAState)
		if len(pxa) != 3 || !strings.EqualFold(string(pxa), "pxa") {
			return nil, "", fmt.Errorf("case %s has an unexpected pxa state %q", d.ID, d.PXAState)
		}
		i := strings.IndexByte("PXA", letter)
		pxa[i] = letter
		return participantStatus(ctx, s, d.ID, map[string]any{"caseStatus": map[string]any{"type": "CaseStatus", "pxaState": string(pxa)}})
	}
}
