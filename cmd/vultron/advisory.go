package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/vocab"
)

// productGroup is "vultron product": a vendor's statement of a product's
// status, recorded in the case (Add(ProductStatus)).
func productGroup() actionGroup {
	return actionGroup{
		name:        "product",
		description: "The products a case's vulnerability affects, as their vendors state them. CASE is a case id or a unique part of it.",
		actions: []actionSpec{{name: "add", message: "GI", summary: "state a product's status (affected, fixed, not-affected, under-investigation)",
			args: "CASE", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, v *actionValues) {
				fs.StringVar(&v.vendor, "vendor", "", "the vendor's actor URL, a participant of the case (default: the acting actor)")
				fs.StringVar(&v.product, "product", "", "the product's name (required)")
				fs.StringVar(&v.purl, "purl", "", "its package URL, such as pkg:npm/widget@4.2.0")
				fs.StringVar(&v.cpe, "cpe", "", "its CPE name, such as cpe:2.3:a:vendor:widget:4.2.0:*:*:*:*:*:*:*")
				fs.StringVar(&v.versions, "versions", "", "the versions the status is of: \"< 4.2.1\", \"<= 4.2.0\" or one version")
				fs.StringVar(&v.status, "status", "", "affected, fixed, not-affected or under-investigation (required)")
				fs.StringVar(&v.justification, "justification", "", "why it is not affected: component_not_present, vulnerable_code_not_present,\nvulnerable_code_cannot_be_controlled_by_adversary, vulnerable_code_not_in_execute_path,\ninline_mitigations_already_exist")
				fs.StringVar(&v.content, "statement", "", "what to do (affected) or why it is not affected, in words")
			},
			build: buildProduct}},
	}
}

func runProduct(ctx context.Context, env *environment, args []string) error {
	return productGroup().run(ctx, env, args)
}

func buildProduct(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.product == "" || v.status == "" {
		return nil, "", usageError("give the product with --product and its status with --status")
	}
	switch v.status {
	case cases.ProductAffected, cases.ProductFixed, cases.ProductNotAffected, cases.ProductUnderInvestigation:
	default:
		return nil, "", usageError("--status is affected, fixed, not-affected or under-investigation, not %q", v.status)
	}
	if v.purl != "" {
		if err := cases.CheckPURL(v.purl); err != nil {
			return nil, "", usageError("--purl: %v", err)
		}
	}
	if err := cases.CheckVersions(v.versions); err != nil {
		return nil, "", usageError("--versions: %v", err)
	}
	if v.cpe != "" {
		if err := cases.CheckCPE(v.cpe); err != nil {
			return nil, "", usageError("--cpe: %v", err)
		}
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	vendor := v.vendor
	if vendor == "" {
		if vendor, err = s.me(ctx); err != nil {
			return nil, "", err
		}
	}
	if _, err := participantOf(d, vendor); err != nil {
		return nil, "", err
	}
	ps := map[string]any{"type": vocab.TypeProductStatus, "name": v.product, "vendor": vendor, "status": v.status}
	for k, val := range map[string]string{"purl": v.purl, "cpe": v.cpe, "versions": v.versions, "justification": v.justification, "content": v.content} {
		if val != "" {
			ps[k] = val
		}
	}
	return map[string]any{"type": "Add", "object": ps, "target": d.ID, "context": d.ID}, d.ID, nil
}

// advisoryGroup holds the advisory's actions that are case activities
// (GI notes the Case Actor records): sharing a draft, reviewing it, the
// publication time. draft and publish (runAdvisory) ask the owner's node.
func advisoryGroup() actionGroup {
	return actionGroup{
		name: "advisory",
		description: "The case's advisory: a draft shared for review, the publication time, the publication.\n" +
			"CASE is a case id or a unique part of it.",
		others: []actionSpec{
			{name: "draft", message: "", summary: "print the CSAF, CVE or OSV document publishing now would publish, as a draft", args: "CASE"},
			{name: "publish", message: "", summary: "publish the advisory, or a revision (owner); --force past reviews and the agreed time", args: "CASE"},
		},
		actions: []actionSpec{
			{name: "share", message: "GI", summary: "share a draft with chosen participants for review (owner)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.with, "with", "", "the reviewers' actor URLs, comma-separated (required)")
					fs.StringVar(&v.title, "title", "", "the advisory's title (default: the case's name)")
					fs.StringVar(&v.summary, "summary", "", "a summary, one paragraph")
					fs.StringVar(&v.details, "details", "", "the details")
				},
				build: buildShare},
			{name: "review", message: "GI", summary: "answer a draft shared with the acting actor: --approve or --request-changes", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.BoolVar(&v.approve, "approve", false, "approve the draft")
					fs.BoolVar(&v.changes, "request-changes", false, "ask for changes")
					fs.StringVar(&v.content, "comment", "", "what to change, or a word of approval")
				},
				build: buildReview},
			{name: "propose-time", message: "GI", summary: "propose when the advisory is published (owner)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.at, "at", "", "the time, RFC 3339, still to come (required)")
				},
				build: buildProposeTime},
			{name: "accept-time", message: "GI", summary: "accept the proposed publication time", args: "CASE", minArgs: 1, maxArgs: 1,
				build: buildAcceptTime},
		},
	}
}

func buildShare(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	var reviewers []string
	for _, r := range strings.Split(v.with, ",") {
		if r = strings.TrimSpace(r); r != "" {
			if _, err := actorURL(r); err != nil {
				return nil, "", err
			}
			reviewers = append(reviewers, r)
		}
	}
	if len(reviewers) == 0 {
		return nil, "", usageError("give the reviewers with --with URL[,URL...]")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	title := v.title
	if title == "" {
		title = d.Name
	}
	draft := map[string]any{"type": "Article", "name": title}
	if v.summary != "" {
		draft["summary"] = v.summary
	}
	if v.details != "" {
		draft["content"] = v.details
	}
	note := map[string]any{"type": "Note", "content": "A draft of the advisory, for your review: " + title, "audience": reviewers,
		"attachment": []any{draft}}
	return map[string]any{"type": "Add", "object": note, "target": d.ID, "context": d.ID}, d.ID, nil
}

func buildReview(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.approve == v.changes {
		return nil, "", usageError("give --approve or --request-changes")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	if d.Advisory == nil || d.Advisory.Draft == nil {
		return nil, "", fmt.Errorf("case %s has no draft advisory shared for review", d.ID)
	}
	review, comment := cases.ReviewApproved, v.content
	if v.changes {
		review = cases.ReviewChangesRequested
	}
	if comment == "" {
		comment = map[string]string{cases.ReviewApproved: "Approved.", cases.ReviewChangesRequested: "Changes requested."}[review]
	}
	note := map[string]any{"type": "Note", "content": comment, "inReplyTo": d.Advisory.Draft.NoteID, "review": review}
	return map[string]any{"type": "Add", "object": note, "target": d.ID, "context": d.ID}, d.ID, nil
}

func buildProposeTime(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	at, err := time.Parse(time.RFC3339, v.at)
	if err != nil {
		return nil, "", usageError("--at is an RFC 3339 time, such as 2027-01-15T14:00:00Z, not %q", v.at)
	}
	if now := time.Now(); at.Before(now) {
		return nil, "", usageError("--at %s has passed (it is %s); propose a time to come", at.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	t := at.UTC().Format(time.RFC3339)
	note := map[string]any{"type": "Note", "content": "Proposed publication time: " + t, "publicationTime": t}
	return map[string]any{"type": "Add", "object": note, "target": d.ID, "context": d.ID}, d.ID, nil
}

func buildAcceptTime(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	if d.Advisory == nil || d.Advisory.PublishAt == nil {
		return nil, "", fmt.Errorf("case %s has no proposed publication time", d.ID)
	}
	t := d.Advisory.PublishAt.Time.UTC().Format(time.RFC3339)
	note := map[string]any{"type": "Note", "content": "Publication time accepted: " + t, "publicationTime": t, "inReplyTo": d.Advisory.PublishAt.NoteID}
	return map[string]any{"type": "Add", "object": note, "target": d.ID, "context": d.ID}, d.ID, nil
}

// runAdvisory runs draft and publish itself and the other actions as a
// group of case actions.
func runAdvisory(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 && (args[0] == "draft" || args[0] == "publish") {
		return runAdvisoryDocs(ctx, env, args[0], args[1:])
	}
	return advisoryGroup().run(ctx, env, args)
}

func runAdvisoryDocs(ctx context.Context, env *environment, verb string, args []string) error {
	synopsis := map[string]string{
		"draft":   "vultron advisory draft CASE [--format csaf|cve|osv] [flags]",
		"publish": "vultron advisory publish CASE [--title T] [--summary S] [--details D] [--force] [flags]",
	}[verb]
	about := map[string]string{
		"draft": "Print the document (CSAF 2.0 by default, CVE JSON 5 or OSV) that publishing the case's advisory\n" +
			"now would publish, marked as a draft. Asked of the case owner's node.",
		"publish": "Publish the case's advisory (owner): its CSAF, CVE and OSV documents, and Create(Article) to the\n" +
			"owner's followers and the case's participants; again, a revision (Update). Refused while the\n" +
			"embargo is in force and the case is not public; and, unless --force, while an invited reviewer has\n" +
			"not answered the draft or asks for changes to it, and before the publication time the participants\n" +
			"agreed on. Waits until the case recorded it (--no-wait: not), then prints\n" +
			"the advisory's URLs. The case is public (P) once a participant says so: \"vultron status public\",\n" +
			"or a policy's report_public at advisory_published (docs/policies.md).",
	}[verb]
	fs := newFlagSet("advisory "+verb, synopsis, about, env)
	nf := addNodeFlags(fs)
	format := fs.String("format", "csaf", "draft: csaf, cve or osv")
	var req api.PublishRequest
	fs.StringVar(&req.Title, "title", "", "publish: the title (default: the shared draft's, or the case's name)")
	fs.StringVar(&req.Summary, "summary", "", "publish: a summary (default: the shared draft's)")
	fs.StringVar(&req.Details, "details", "", "publish: the details (default: the shared draft's)")
	fs.BoolVar(&req.Force, "force", false, "publish: publish before every invited reviewer answered, or before the publication time the participants agreed on")
	asJSON := fs.Bool("json", false, "publish: print the answer as JSON")
	timeout := fs.Duration("timeout", defaultWait, "publish: how long to wait for the case to record the publication")
	noWait := fs.Bool("no-wait", false, "publish: return once the node accepted the publication, before the case recorded it")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("advisory %s takes one case", verb)
	}
	id, err := resolveCaseID(ctx, c, fs.Arg(0))
	if err != nil {
		return err
	}
	path := "/api/cases/" + url.PathEscape(id) + "/advisory/"
	if verb == "draft" {
		switch *format {
		case "csaf", "cve", "osv":
		default:
			return usageError("--format is csaf, cve or osv, not %q", *format)
		}
		var doc json.RawMessage
		if err := c.do(ctx, "GET", path+"draft?format="+*format, nil, &doc); err != nil {
			return err
		}
		_, err := env.stdout.Write(append(doc, '\n'))
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError("--timeout must be positive, not %s", *timeout)
	}
	var out api.Published
	if err := c.do(ctx, "POST", path+"publish", body, &out); err != nil {
		return err
	}
	// The Case Actor records the Create or Update before the documents
	// are served; like every action, wait for it, or for its refusal.
	var rec *api.ActivityRecord
	if !*noWait {
		if rec, err = waitRecorded(ctx, &session{c: c, env: env}, id, out.Activity, *timeout); err != nil {
			return err
		}
	}
	if *asJSON {
		return printJSON(env, out)
	}
	fmt.Fprintf(env.stdout, "advisory %s revision %d published (%s)\n", out.TrackingID, out.Revision, out.Activity)
	if rec != nil {
		fmt.Fprintf(env.stdout, "recorded in case %s as entry %d\n", cases.ShortID(id), *rec.LogIndex)
	}
	fmt.Fprintf(env.stdout, "page %s\ncsaf %s\n", out.Links.Page, out.Links.CSAF)
	if out.Links.CVE != "" {
		fmt.Fprintf(env.stdout, "cve  %s\n", out.Links.CVE)
	}
	fmt.Fprintf(env.stdout, "osv  %s\n", out.Links.OSV)
	return nil
}
