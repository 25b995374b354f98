package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/openvultron/vultron/vocab"
)

// reportGroup is "vultron report": the Report Management messages a
// finder or a vendor sends about one report before (and as) a case opens.
func reportGroup() actionGroup {
	return actionGroup{
		name: "report",
		description: "Report Management (RM): submit a vulnerability report to a vendor or coordinator, and\n" +
			"decide on one received. The node acknowledges received reports (RK) by itself.\n" +
			"OFFER is the id of the Offer that submitted the report, the report's id, or a\n" +
			"unique part of either, looked up in the acting actor's inbox.",
		actions: []actionSpec{
			{name: "submit", message: "RS", summary: "submit a vulnerability report to an actor (RS|EP with an embargo proposal)", minArgs: 0, maxArgs: 0,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.to, "to", "", "the actor id (URL) of the vendor or coordinator to report to (required)")
					fs.StringVar(&v.name, "name", "", "the report's title (required)")
					fs.StringVar(&v.content, "content", "", "the report's text")
					fs.StringVar(&v.contentFile, "content-file", "", "a file holding the report's text")
					fs.IntVar(&v.days, "embargo-days", 0, "propose an embargo ending this many days from now with the report (EP)")
					fs.StringVar(&v.end, "embargo-end", "", "propose an embargo ending at this RFC 3339 time with the report (EP)")
				},
				build: buildSubmitReport},
			{name: "validate", message: "RV", summary: "validate a received report; this opens a case", args: "OFFER", minArgs: 1, maxArgs: 1,
				build: reportDecision("Accept")},
			{name: "invalidate", message: "RI", summary: "invalidate a received report", args: "OFFER", minArgs: 1, maxArgs: 1,
				build: reportDecision("TentativeReject")},
			{name: "close", message: "RC", summary: "close a received report without a case", args: "OFFER", minArgs: 1, maxArgs: 1,
				build: reportDecision("Reject")},
			{name: "add", message: "-", summary: "add a received report to a case that exists (owner; it opens no other case)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.offer, "offer", "", "the report to add: its Offer's or its own id, or a unique part (required)")
				},
				build: buildAddReport},
			{name: "duplicate", message: "RC", summary: "close a received report as a duplicate of a case", args: "OFFER", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.of, "of", "", "the case the report duplicates: its id or a unique part (required)")
				},
				build: buildDuplicate},
		},
	}
}

func runReport(ctx context.Context, env *environment, args []string) error {
	return reportGroup().run(ctx, env, args)
}

func buildSubmitReport(_ context.Context, _ *session, v *actionValues, _ []string) (map[string]any, string, error) {
	if v.to == "" || v.name == "" {
		return nil, "", usageError("report submit needs --to ACTOR and --name TITLE")
	}
	if !strings.HasPrefix(v.to, "https://") && !strings.HasPrefix(v.to, "http://") {
		return nil, "", usageError("--to must be an actor id (a URL), not %q", v.to)
	}
	content, err := v.text("the report text")
	if err != nil {
		return nil, "", err
	}
	now := time.Now().UTC().Truncate(time.Second)
	end, err := endFlags(v, now, "--embargo-end", "--embargo-days")
	if err != nil {
		return nil, "", err
	}
	// The node checks the terms: an end that has passed is its refusal.
	return vocab.OfferReport(v.to, v.name, content, now, end), "", nil
}

// reportDecision answers a report's Offer with an activity of type typ:
// Accept (RV), TentativeReject (RI) or Reject (RC).
func reportDecision(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		offer, err := s.findOffer(ctx, args[0])
		if err != nil {
			return nil, "", err
		}
		act := map[string]any{"type": typ, "object": refID(offer["id"])}
		if sender := refID(offer["actor"]); sender != "" {
			act["to"] = []string{sender}
		}
		return act, "", nil
	}
}

// findOffer finds the Offer of a report in the acting actor's inbox by
// the Offer's id, the report's id, or a unique part of either.
func (s *session) findOffer(ctx context.Context, key string) (map[string]any, error) {
	var exact map[string]any
	var partial []map[string]any
	err := s.inboxItems(ctx, func(it map[string]any) bool {
		if it["type"] != "Offer" {
			return false
		}
		obj, ok := it["object"].(map[string]any)
		if !ok || obj["type"] != "VulnerabilityReport" {
			return false
		}
		id, reportID := refID(it["id"]), refID(obj)
		if id == key || reportID == key {
			exact = it
			return true
		}
		if strings.Contains(id, key) || strings.Contains(reportID, key) {
			partial = append(partial, it)
		}
		return false
	})
	switch {
	case err != nil:
		return nil, err
	case exact != nil:
		return exact, nil
	case len(partial) == 1:
		return partial[0], nil
	case len(partial) > 1:
		return nil, fmt.Errorf("%q matches %d reports in the inbox of %s; give more of the id", key, len(partial), s.as)
	}
	return nil, fmt.Errorf("no report offered to %s matches %q", s.as, key)
}

// buildAddReport adds a report the acting actor received to a case it
// owns: Add(VulnerabilityReport) to the case, also addressed to the
// report's reporter.
func buildAddReport(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.offer == "" {
		return nil, "", usageError("report add needs --offer OFFER, the report to add")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	offer, err := s.findOffer(ctx, v.offer)
	if err != nil {
		return nil, "", err
	}
	report, _ := offer["object"].(map[string]any)
	return vocab.AddReport(d.ID, report, refID(offer["actor"])), d.ID, nil
}

// buildDuplicate closes a report the acting actor received as a duplicate
// of a case (RC, with the case as the pointer).
func buildDuplicate(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.of == "" {
		return nil, "", usageError("report duplicate needs --of CASE, the case the report duplicates")
	}
	offer, err := s.findOffer(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	d, err := s.caseDetail(ctx, v.of)
	if err != nil {
		return nil, "", err
	}
	return vocab.CloseAsDuplicate(refID(offer["id"]), d.ID, refID(offer["actor"])), "", nil
}
