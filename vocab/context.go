package vocab

import (
	"maps"
	"slices"
	"strings"
)

// A peer that reads documents as JSON-LD (Fedify, for one) reads every
// member name through the document's @context; this package reads member
// names as they are written. A local context object that gave a name this
// node reads another meaning ({"type": "@id"}, {"Offer": "https://..."}),
// or gave one of those meanings another name ({"sender": "as:actor"}),
// would make the node and such a peer read one document differently, and
// a Case Actor relays what it records to every participant. So a local
// context may add terms of its own, and restate an ActivityStreams or
// Vultron term with its own meaning (Mastodon restates "sensitive" and
// "Hashtag"), but not redefine one; checkContexts refuses the rest.
// Remote contexts other than the ActivityStreams and Vultron ones are
// neither fetched nor read: the node cannot know what they say. They are
// not relayed either: Marshal writes the Vultron context alone, so what a
// Case Actor records and announces names no other; only the members this
// package keeps unread carry a nested @context on, which is why every
// @context in the document is checked, not only the ones it reads. For
// the same reason a member may not be named by a JSON-LD keyword ("@type"
// beside "type") or by the compact or full IRI of a term this node reads
// ("as:actor" beside "actor"): a JSON-LD peer reads it as that term, and
// the node does not.

// Namespaces of the terms this node reads: ActivityStreams', and the one
// the Vultron context puts the Vultron terms in.
const (
	activityStreamsNS = "https://www.w3.org/ns/activitystreams#"
	vultronNS         = "https://certcc.github.io/Vultron/ns#"
)

// as2PropertyNames are the ActivityStreams 2.0 and ActivityPub property
// names, with the extensions the ActivityStreams context defines; the type
// names are coreTypeNames.
var as2PropertyNames = [...]string{
	"actor", "attachment", "attributedTo", "audience", "bcc", "bto", "cc", "context", "current",
	"first", "generator", "icon", "image", "inReplyTo", "instrument", "last", "location", "items",
	"orderedItems", "oneOf", "anyOf", "closed", "origin", "next", "object", "prev", "preview",
	"result", "replies", "tag", "target", "to", "url", "accuracy", "altitude", "content",
	"contentMap", "name", "nameMap", "duration", "height", "href", "hreflang", "partOf", "latitude",
	"longitude", "mediaType", "endTime", "published", "radius", "rel", "startIndex", "startTime",
	"summary", "summaryMap", "totalItems", "units", "updated", "width", "subject", "relationship",
	"describes", "formerType", "deleted",
	"inbox", "outbox", "following", "followers", "liked", "likes", "shares", "streams",
	"preferredUsername", "endpoints", "source",
	"sensitive", "manuallyApprovesFollowers", "movedTo", "alsoKnownAs", "Hashtag",
}

// vultronTermNames are the Vultron type and property names this package
// reads beside the ActivityStreams ones.
var vultronTermNames = [...]string{
	TypeVulnerabilityReport, TypeVulnerabilityCase, TypeVulnerabilityCaseStub, TypeCaseParticipant,
	TypeParticipantStatus, TypeCaseStatus, TypeEmbargoEvent, TypeEmbargoPolicy, TypeCaseProposal,
	TypeCaseParticipantRole, TypeCaseReference, TypeVulnerabilityRecord, TypeProductStatus,
	TypeCaseLedgerEntry,
	"acceptedEmbargoIds", "activeEmbargo", "actorId", "actorParticipantIndex", "aliases",
	"caseActivity", "caseEngagement", "caseId", "caseParticipants", "caseRoles", "caseStatus",
	"caseStatuses", "childCases", "cpe", "cvdRole", "disposition", "embargoAdherence",
	"embargoConsentState", "emConsentState", "embargoPolicy", "emState", "entryHash", "eventType",
	"genesisHash", "justification", "logIndex", "logObjectId", "maximumDuration", "minimumDuration",
	"notes", "parentCases", "participantCaseName", "participantStatus", "participantStatuses",
	"payloadSnapshot", "pendingEmbargoProposalIndex", "preferredDuration", "prevLogHash",
	"proposedEmbargoes", "purl", "pxaState", "reasonCode", "reasonDetail", "receivedAt",
	"recommendationRecommenderIndex", "rmState", "role", "roles", "siblingCases", "status", "tags", "term",
	"trackingId", "vendor", "versions", "vfdState", "vulnerabilityReports",
}

// contextKeywords are the keywords a local context may set: they change
// no term's meaning.
var contextKeywords = [...]string{"@language", "@direction", "@version", "@protected", "@propagate"}

// standardIRI returns what this node reads term as ("@id" and "@type" for
// the keyword aliases the ActivityStreams context defines), or "" for a
// term it does not read.
func standardIRI(term string) string {
	switch term {
	case "id":
		return "@id"
	case "type":
		return "@type"
	case "as":
		return activityStreamsNS
	case "vultron":
		return vultronNS
	}
	if slices.Contains(coreTypeNames[:], term) || slices.Contains(as2PropertyNames[:], term) {
		return activityStreamsNS + term
	}
	if slices.Contains(vultronTermNames[:], term) {
		return vultronNS + term
	}
	return ""
}

// readTerm returns the term this node reads as iri, or "".
func readTerm(iri string) string {
	for _, ns := range []string{activityStreamsNS, vultronNS} {
		if name, ok := strings.CutPrefix(iri, ns); ok && name != "" && standardIRI(name) == iri {
			return name
		}
	}
	return ""
}

// readPrefix returns the prefix this node reads namespace ns by.
func readPrefix(ns string) string {
	if ns == vultronNS {
		return "vultron"
	}
	return "as"
}

// expandIRI expands what a local context maps a term to: a compact IRI
// ("as:actor", or with a prefix the same context defines), a term this
// node reads ("actor"), or an IRI, with the ActivityStreams namespace in
// its one spelling.
func expandIRI(v string, local map[string]any) string {
	if s, ok := strings.CutPrefix(v, "http://www.w3.org/ns/activitystreams#"); ok {
		return activityStreamsNS + s
	}
	prefix, suffix, compact := strings.Cut(v, ":")
	switch {
	case compact && strings.HasPrefix(suffix, "//"):
		return v
	case compact:
		base := standardIRI(prefix)
		if def, ok := local[prefix]; ok {
			base = definitionIRI(def)
		}
		if base == "" || strings.HasPrefix(base, "@") {
			return v
		}
		return base + suffix
	case !strings.HasPrefix(v, "@"):
		if iri := standardIRI(v); iri != "" {
			return iri
		}
	}
	return v
}

// definitionIRI is the IRI a term definition names: the string, or an
// expanded definition's @id ("" when it names none, or is null).
func definitionIRI(def any) string {
	switch d := def.(type) {
	case string:
		return d
	case map[string]any:
		s, _ := d["@id"].(string)
		return s
	}
	return ""
}

// checkContexts checks every @context in the decoded document v, at any
// depth (path is v's), as described above.
func checkContexts(v any, path string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if k == "@context" {
				if err := checkContextValue(child, memberPath(path, k)); err != nil {
					return err
				}
				continue
			}
			// The path of a member is built only where it is needed: an
			// object or an array may hold a context, and a refused name
			// is named (every inbound activity passes here).
			if err := checkMemberName(k, path); err != nil {
				return err
			}
			if isContainer(child) {
				if err := checkContexts(child, memberPath(path, k)); err != nil {
					return err
				}
			}
		}
	case []any:
		for i, child := range x {
			if isContainer(child) {
				if err := checkContexts(child, itemPath(path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isContainer reports whether decoded JSON value v is an object or an
// array.
func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// checkMemberName refuses a member name of the object at parent that a
// JSON-LD peer reads other than this node does: a keyword (the node reads "id" and "type",
// not "@id" and "@type", which such a peer merges with them or takes in
// their place), or a compact or full IRI of a term this node reads under
// its own name ("as:actor" beside "actor"). A prefix that a local context
// defines is one of its terms (checkLocalContext), so the IRIs checked
// are those of the prefixes this node knows.
func checkMemberName(name, parent string) error {
	if strings.HasPrefix(name, "@") {
		return parseErr(memberPath(parent, name), "the member %q is a JSON-LD keyword, which this node does not read: leave it out", name)
	}
	if !strings.Contains(name, ":") {
		return nil
	}
	iri := expandIRI(name, nil)
	if term := readTerm(iri); term != "" {
		return parseErr(memberPath(parent, name), "the member %q is another name of %s, which this node reads only as %q", name, iri, term)
	}
	return nil
}

// checkContextValue checks the value of one @context member at path.
func checkContextValue(v any, path string) error {
	switch c := v.(type) {
	case nil:
		return parseErr(path, "a null @context drops the ActivityStreams context: leave it out")
	case string:
		return nil
	case map[string]any:
		return checkLocalContext(c, path)
	case []any:
		for i, e := range c {
			switch e := e.(type) {
			case string:
			case map[string]any:
				if err := checkLocalContext(e, itemPath(path, i)); err != nil {
					return err
				}
			default:
				return parseErr(itemPath(path, i), "an element of @context must be a context URL or a context object, not %s", jsonKind(e))
			}
		}
		return nil
	}
	return parseErr(path, "@context must be a context URL, a context object or an array of them, not %s", jsonKind(v))
}

// checkLocalContext checks the term definitions of a local context object
// at path, in the order of their names so that the first problem named is
// always the same.
func checkLocalContext(local map[string]any, path string) error {
	for _, term := range slices.Sorted(maps.Keys(local)) {
		def, p := local[term], memberPath(path, term)
		if strings.HasPrefix(term, "@") {
			if !slices.Contains(contextKeywords[:], term) {
				return parseErr(p, "a local context may not set %s: it would change what the terms of the document mean", term)
			}
			continue
		}
		reverse := false
		switch d := def.(type) {
		case nil, string:
		case map[string]any:
			if _, ok := d["@context"]; ok {
				return parseErr(p, "a term definition may not carry its own @context")
			}
			_, reverse = d["@reverse"]
		default:
			return parseErr(p, "a term definition must be an IRI, an object or null, not %s", jsonKind(def))
		}
		iri := definitionIRI(def)
		if iri != "" {
			iri = expandIRI(iri, local)
		}
		want := standardIRI(term)
		if strings.Contains(term, ":") {
			if own := readTerm(expandIRI(term, local)); own != "" {
				want = standardIRI(own)
			}
		}
		switch {
		case want != "" && (reverse || iri != want):
			return parseErr(p, "the context redefines %q, which this node reads as %s, as %s", term, want, describeDefinition(iri, reverse))
		case want != "":
		case strings.HasPrefix(iri, "@"):
			return parseErr(p, "the context makes %q an alias of the keyword %s", term, iri)
		case iri == activityStreamsNS || iri == vultronNS:
			// Members named with it would escape checkMemberName.
			return parseErr(p, "the context makes %q another prefix of %s, which this node reads only as %q", term, iri, readPrefix(iri))
		case readTerm(iri) != "":
			return parseErr(p, "the context makes %q another name of %s, which this node reads only as %q", term, iri, readTerm(iri))
		}
	}
	return nil
}

// describeDefinition says what a term definition makes a term.
func describeDefinition(iri string, reverse bool) string {
	switch {
	case reverse:
		return "a reverse property"
	case iri == "":
		return "nothing (it is removed)"
	}
	return iri
}
