package vocab

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Document is a parsed Vultron document: an activity or a bare object.
type Document struct {
	Object Object
}

// Activity returns the document's activity, or nil when the document is a
// bare object.
func (d *Document) Activity() *Activity {
	a, _ := d.Object.(*Activity)
	return a
}

// Parse decodes a Vultron document with the default limits.
func Parse(data []byte) (*Document, error) { return ParseWithLimits(data, DefaultLimits()) }

// ParseWithLimits decodes a Vultron document. It refuses, with a
// *ParseError, anything that is not strict JSON within lim, whose
// @context is neither the ActivityStreams nor the Vultron context, any of
// whose contexts redefines a term this node reads (checkContexts), whose
// types are unknown, or whose Vultron properties do not hold the values
// the protocol defines.
func ParseWithLimits(data []byte, lim Limits) (*Document, error) {
	m, err := decodeStrict(data, lim)
	if err != nil {
		return nil, err
	}
	raw, ok := m["@context"]
	if !ok || raw == nil {
		return nil, parseErr("$", "@context is missing: use %q", VultronContext)
	}
	if err := checkContexts(m, "$"); err != nil {
		return nil, err
	}
	o, err := decodeObject(m, "$", "")
	if err != nil {
		return nil, err
	}
	return &Document{Object: o}, nil
}

// checkContext accepts the ActivityStreams context, the Vultron context, or
// an array holding at least one of them.
func checkContext(v any, path string) error {
	isKnown := func(s string) bool { return s == ActivityStreamsContext || s == VultronContext }
	switch c := v.(type) {
	case string:
		if isKnown(c) {
			return nil
		}
	case []any:
		for _, e := range c {
			if s, ok := e.(string); ok && isKnown(s) {
				return nil
			}
		}
	}
	return parseErr(memberPath(path, "@context"), "@context must be %q or %q, or an array holding one of them", VultronContext, ActivityStreamsContext)
}

// decodeObject turns a decoded JSON object into a typed Object. implied is
// the type assumed when the object has none (only for properties whose
// range is a single Vultron type).
func decodeObject(m map[string]any, path, implied string) (Object, error) {
	if c, ok := m["@context"]; ok && c != nil {
		if err := checkContext(c, path); err != nil {
			return nil, err
		}
	}
	if _, ok := m["asType"]; ok {
		return nil, parseErr(memberPath(path, "asType"), "asType is not an AS2 property: use type")
	}
	typ, err := objectType(m, path, implied)
	if err != nil {
		return nil, err
	}
	r := &reader{m: m, path: path, used: map[string]bool{"@context": true, "type": true}}
	var o Object
	switch typ {
	case TypeVulnerabilityReport:
		o = &VulnerabilityReport{}
	case TypeVulnerabilityCase, TypeVulnerabilityCaseStub:
		typ = TypeVulnerabilityCase
		o = r.vulnerabilityCase()
	case TypeCaseParticipant:
		o = r.caseParticipant()
	case TypeParticipantStatus:
		o = r.participantStatus()
	case TypeCaseStatus:
		o = r.caseStatus()
	case TypeEmbargoEvent:
		o = &EmbargoEvent{}
	case TypeEmbargoPolicy:
		o = r.embargoPolicy()
	case TypeCaseProposal:
		o = &CaseProposal{Object: r.ref("object", TypeVulnerabilityReport), Target: r.ref("target")}
	case TypeCaseParticipantRole:
		o = &CaseParticipantRole{Role: r.enum("role", NormalizeRole)}
	case TypeCaseReference:
		o = &CaseReference{Tags: r.strList("tags")}
	case TypeVulnerabilityRecord:
		o = &VulnerabilityRecord{Aliases: r.strList("aliases")}
	case TypeProductStatus:
		o = &ProductStatus{Vendor: r.iri("vendor"), PURL: r.str("purl"), CPE: r.str("cpe"), Versions: r.str("versions"),
			Status: r.str("status"), Justification: r.str("justification")}
	case TypeCaseLedgerEntry:
		o = r.caseLedgerEntry()
	default:
		kind, err := recognizeAS2(typ)
		if err != nil {
			return nil, &ParseError{Path: memberPath(path, "type"), Msg: err.Error(), Err: err}
		}
		switch kind {
		case as2Unknown:
			what := "object"
			if _, ok := m["actor"]; ok {
				what = "activity"
			} else if _, ok := m["object"]; ok {
				what = "activity"
			}
			return nil, parseErr(path, "unknown %s type %s", what, typ)
		case as2Activity:
			o = r.activity()
		case as2Actor:
			o = r.actor()
		default:
			o = &GenericObject{}
		}
	}
	r.base(o.Common(), typ)
	if r.err != nil {
		return nil, r.err
	}
	return o, nil
}

func objectType(m map[string]any, path, implied string) (string, error) {
	v, ok := m["type"]
	if !ok || v == nil {
		if implied != "" {
			return implied, nil
		}
		return "", parseErr(path, "type is missing")
	}
	s, ok := v.(string)
	if !ok {
		return "", parseErr(memberPath(path, "type"), "type must be a single string, not %s", jsonKind(v))
	}
	if s == "" {
		return "", parseErr(memberPath(path, "type"), "type is empty")
	}
	if implied != "" && s != implied {
		return "", parseErr(memberPath(path, "type"), "must be a %s, not a %s", implied, s)
	}
	return s, nil
}

// reader takes properties out of a decoded JSON object one at a time and
// remembers the first problem. Null values count as absent.
type reader struct {
	m    map[string]any
	path string
	used map[string]bool
	err  *ParseError
}

func (r *reader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = parseErr(memberPath(r.path, key), format, args...)
	}
}

func (r *reader) failErr(err error, key string) {
	if r.err != nil {
		return
	}
	if pe, ok := err.(*ParseError); ok {
		r.err = pe
		return
	}
	r.err = &ParseError{Path: memberPath(r.path, key), Msg: err.Error(), Err: err}
}

// failAt records a problem at a full JSON path.
func (r *reader) failAt(path, format string, args ...any) {
	if r.err == nil {
		r.err = parseErr(path, format, args...)
	}
}

func (r *reader) take(key string) (any, bool) {
	r.used[key] = true
	v, ok := r.m[key]
	if !ok || v == nil || r.err != nil {
		return nil, false
	}
	return v, true
}

// refuse rejects a property that an older wire format used under a name
// that now means something else or nothing, with the current name.
func (r *reader) refuse(key, msg string) {
	if v, ok := r.m[key]; ok && v != nil {
		r.fail(key, "%s", msg)
	}
	r.used[key] = true
}

func (r *reader) str(key string) string {
	v, ok := r.take(key)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(key, "must be a string, not %s", jsonKind(v))
	}
	return s
}

func (r *reader) iri(key string) string {
	s := r.str(key)
	if s != "" {
		if err := checkIRI(s); err != nil {
			r.fail(key, "%v", err)
		}
	}
	return s
}

// checkIRI accepts an absolute IRI (one with a scheme).
func checkIRI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is not an absolute IRI", s)
	}
	return nil
}

// dateTime reads an xsd:dateTime, which must be an RFC 3339 date-time.
func (r *reader) dateTime(key string) string {
	s := r.str(key)
	if s != "" {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			r.fail(key, "%q is not an RFC 3339 date-time such as 2026-01-31T12:00:00Z", s)
		}
	}
	return s
}

func (r *reader) boolp(key string) *bool {
	v, ok := r.take(key)
	if !ok {
		return nil
	}
	b, ok := v.(bool)
	if !ok {
		r.fail(key, "must be true or false, not %s", jsonKind(v))
		return nil
	}
	return &b
}

func (r *reader) intp(key string) *int64 {
	v, ok := r.take(key)
	if !ok {
		return nil
	}
	n, ok := v.(json.Number)
	if !ok {
		r.fail(key, "must be an integer, not %s", jsonKind(v))
		return nil
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		r.fail(key, "must be an integer, not %s", n)
		return nil
	}
	return &i
}

func (r *reader) strList(key string) []string {
	v, ok := r.take(key)
	if !ok {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		r.fail(key, "must be an array of strings, not %s", jsonKind(v))
		return nil
	}
	out := make([]string, 0, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			r.failAt(itemPath(memberPath(r.path, key), i), "must be a string, not %s", jsonKind(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (r *reader) iriList(key string) []string {
	out := r.strList(key)
	for i, s := range out {
		if err := checkIRI(s); err != nil {
			r.failAt(itemPath(memberPath(r.path, key), i), "%v", err)
		}
	}
	return out
}

func (r *reader) strMap(key string) map[string]string {
	v, ok := r.take(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(key, "must be an object mapping strings to strings, not %s", jsonKind(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			r.fail(key, "value of %q must be a string, not %s", k, jsonKind(e))
			return nil
		}
		out[k] = s
	}
	return out
}

func (r *reader) opaque(key string) map[string]any {
	v, ok := r.take(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(key, "must be an object, not %s", jsonKind(v))
	}
	return m
}

func (r *reader) enum(key string, norm func(string) (string, error)) string {
	s := r.str(key)
	if s == "" || r.err != nil {
		return s
	}
	out, err := norm(s)
	if err != nil {
		r.fail(key, "%v", err)
	}
	return out
}

func (r *reader) enumList(key string, norm func(string) (string, error)) []string {
	list := r.strList(key)
	for i, s := range list {
		out, err := norm(s)
		if err != nil {
			r.failAt(itemPath(memberPath(r.path, key), i), "%v", err)
			return nil
		}
		list[i] = out
	}
	return list
}

// refValue decodes one value of an object-valued property: an IRI or an
// inline object whose type, if types is not empty, is one of types.
func (r *reader) refValue(v any, path string, types []string) Ref {
	switch x := v.(type) {
	case string:
		if err := checkIRI(x); err != nil {
			r.failErr(&ParseError{Path: path, Msg: err.Error()}, "")
			return Ref{}
		}
		return Ref{IRI: x}
	case map[string]any:
		implied := ""
		if len(types) == 1 {
			if _, hasType := x["type"]; !hasType {
				implied = types[0]
			}
		}
		o, err := decodeObject(x, path, implied)
		if err != nil {
			r.failErr(err, "")
			return Ref{}
		}
		if len(types) > 0 && !typeIn(o.Common().Type, types) {
			r.failErr(&ParseError{Path: path, Msg: fmt.Sprintf("must be a %s, not a %s", strings.Join(types, " or "), o.Common().Type)}, "")
			return Ref{}
		}
		return Ref{Object: o}
	}
	r.failErr(&ParseError{Path: path, Msg: fmt.Sprintf("must be an IRI or an object, not %s", jsonKind(v))}, "")
	return Ref{}
}

func typeIn(t string, types []string) bool {
	for _, x := range types {
		if t == x {
			return true
		}
	}
	return false
}

// ref decodes a property that holds exactly one value.
func (r *reader) ref(key string, types ...string) Ref {
	v, ok := r.take(key)
	if !ok {
		return Ref{}
	}
	if _, isArray := v.([]any); isArray {
		r.fail(key, "must be a single IRI or object, not an array")
		return Ref{}
	}
	return r.refValue(v, memberPath(r.path, key), types)
}

// refs decodes a property that holds one value or an array of values.
func (r *reader) refs(key string) Refs {
	v, ok := r.take(key)
	if !ok {
		return Refs{}
	}
	a, isArray := v.([]any)
	if !isArray {
		return Refs{Items: []Ref{r.refValue(v, memberPath(r.path, key), nil)}, Single: true}
	}
	return Refs{Items: r.refItems(a, key, nil)}
}

// refList decodes a property whose value must be an array.
func (r *reader) refList(key string, types ...string) []Ref {
	v, ok := r.take(key)
	if !ok {
		return nil
	}
	a, isArray := v.([]any)
	if !isArray {
		r.fail(key, "must be an array, not %s", jsonKind(v))
		return nil
	}
	return r.refItems(a, key, types)
}

func (r *reader) refItems(a []any, key string, types []string) []Ref {
	out := make([]Ref, 0, len(a))
	for i, e := range a {
		if e == nil {
			r.failAt(itemPath(memberPath(r.path, key), i), "must not be null")
			return nil
		}
		out = append(out, r.refValue(e, itemPath(memberPath(r.path, key), i), types))
	}
	return out
}

// base fills the common properties and keeps the unread ones in Extra.
func (r *reader) base(b *ObjectBase, typ string) {
	b.Type = typ
	b.ID = r.iri("id")
	b.Name = r.str("name")
	b.Summary = r.str("summary")
	b.Content = r.str("content")
	b.MediaType = r.str("mediaType")
	b.Published = r.dateTime("published")
	b.Updated = r.dateTime("updated")
	b.StartTime = r.dateTime("startTime")
	b.EndTime = r.dateTime("endTime")
	b.Duration = r.str("duration")
	b.Context = r.ref("context")
	b.InReplyTo = r.ref("inReplyTo")
	b.AttributedTo = r.refs("attributedTo")
	b.To = r.refs("to")
	b.Cc = r.refs("cc")
	b.Bto = r.refs("bto")
	b.Bcc = r.refs("bcc")
	b.Audience = r.refs("audience")
	for k, v := range r.m {
		if r.used[k] || v == nil {
			continue
		}
		if b.Extra == nil {
			b.Extra = make(map[string]any)
		}
		b.Extra[k] = v
	}
}

func (r *reader) activity() *Activity {
	a := &Activity{
		Actor:      r.ref("actor"),
		Object:     r.ref("object"),
		Target:     r.ref("target"),
		Origin:     r.ref("origin"),
		Instrument: r.ref("instrument"),
		Result:     r.ref("result"),
		Roles:      r.enumList("roles", NormalizeRole),
	}
	if v, ok := r.take("oneOf"); ok {
		a.OneOf = r.optionList(v, "oneOf")
	}
	if v, ok := r.take("anyOf"); ok {
		a.AnyOf = r.optionList(v, "anyOf")
	}
	return a
}

func (r *reader) optionList(v any, key string) []Ref {
	a, ok := v.([]any)
	if !ok {
		return []Ref{r.refValue(v, memberPath(r.path, key), nil)}
	}
	return r.refItems(a, key, nil)
}

func (r *reader) actor() *Actor {
	return &Actor{
		Inbox:             r.ref("inbox"),
		Outbox:            r.ref("outbox"),
		Following:         r.ref("following"),
		Followers:         r.ref("followers"),
		Liked:             r.ref("liked"),
		Streams:           r.refList("streams"),
		PreferredUsername: r.str("preferredUsername"),
		Endpoints:         r.opaque("endpoints"),
		EmbargoPolicy:     r.ref("embargoPolicy", TypeEmbargoPolicy),
	}
}

func (r *reader) vulnerabilityCase() *VulnerabilityCase {
	c := &VulnerabilityCase{}
	if v, ok := r.m["caseStatus"]; ok {
		if _, isArray := v.([]any); isArray {
			r.refuse("caseStatus", "caseStatus is the 2023 name of the case's status list: use caseStatuses")
		} else if v != nil {
			if st, ok := r.ref("caseStatus", TypeCaseStatus).Object.(*CaseStatus); ok {
				c.CaseStatus = st
			} else {
				r.fail("caseStatus", "must be an inline CaseStatus")
			}
		}
	}
	c.CaseParticipants = r.refList("caseParticipants", TypeCaseParticipant)
	c.ActorParticipantIndex = r.strMap("actorParticipantIndex")
	c.VulnerabilityReports = r.refList("vulnerabilityReports", TypeVulnerabilityReport)
	c.CaseStatuses = r.refList("caseStatuses", TypeCaseStatus)
	c.Notes = r.refList("notes", "Note")
	c.GenesisHash = r.str("genesisHash")
	c.ActiveEmbargo = r.ref("activeEmbargo", TypeEmbargoEvent)
	c.ProposedEmbargoes = r.refList("proposedEmbargoes", TypeEmbargoEvent)
	c.PendingEmbargoProposalIndex = r.strMap("pendingEmbargoProposalIndex")
	c.RecommendationRecommenderIndex = r.strMap("recommendationRecommenderIndex")
	c.CaseActivity = r.refList("caseActivity")
	c.ParentCases = r.iriList("parentCases")
	c.ChildCases = r.iriList("childCases")
	c.SiblingCases = r.iriList("siblingCases")
	return c
}

func (r *reader) caseParticipant() *CaseParticipant {
	r.refuse("participantStatus", "participantStatus is the 2023 name: use participantStatuses")
	r.refuse("actor", "actor is the 2023 name of the participant's actor: use attributedTo")
	return &CaseParticipant{
		CaseRoles:           r.enumList("caseRoles", NormalizeRole),
		ParticipantStatuses: r.refList("participantStatuses", TypeParticipantStatus),
		AcceptedEmbargoIDs:  r.strList("acceptedEmbargoIds"),
		EmbargoConsentState: r.enum("embargoConsentState", normalizePEC),
		ParticipantCaseName: r.str("participantCaseName"),
	}
}

func (r *reader) participantStatus() *ParticipantStatus {
	r.refuse("actor", "actor is the 2023 name of the participant's actor: use attributedTo")
	s := &ParticipantStatus{
		RMState:          r.enum("rmState", normalizeRM),
		VFDState:         r.enum("vfdState", normalizeVFD),
		CaseEngagement:   r.boolp("caseEngagement"),
		EmbargoAdherence: r.boolp("embargoAdherence"),
		EMConsentState:   r.enum("emConsentState", normalizePEC),
		CVDRole:          r.enumList("cvdRole", normalizeRoleName),
		TrackingID:       r.str("trackingId"),
	}
	if ref := r.ref("caseStatus", TypeCaseStatus); ref.Object != nil {
		s.CaseStatus, _ = ref.Object.(*CaseStatus)
	} else if ref.IRI != "" {
		r.fail("caseStatus", "must be an inline CaseStatus, not an IRI")
	}
	return s
}

func (r *reader) caseStatus() *CaseStatus {
	return &CaseStatus{
		EMState:  r.enum("emState", normalizeEM),
		PXAState: r.enum("pxaState", normalizePXA),
	}
}

func (r *reader) embargoPolicy() *EmbargoPolicy {
	return &EmbargoPolicy{
		ActorID:           r.iri("actorId"),
		Inbox:             r.iri("inbox"),
		PreferredDuration: r.str("preferredDuration"),
		MinimumDuration:   r.str("minimumDuration"),
		MaximumDuration:   r.str("maximumDuration"),
		Notes:             r.str("notes"),
	}
}

func (r *reader) caseLedgerEntry() *CaseLedgerEntry {
	e := &CaseLedgerEntry{
		CaseID:          r.str("caseId"),
		LogIndex:        r.intp("logIndex"),
		Disposition:     r.str("disposition"),
		Term:            r.intp("term"),
		LogObjectID:     r.str("logObjectId"),
		EventType:       r.str("eventType"),
		PayloadSnapshot: r.opaque("payloadSnapshot"),
		PrevLogHash:     r.str("prevLogHash"),
		EntryHash:       r.str("entryHash"),
		ReceivedAt:      r.str("receivedAt"),
		ReasonCode:      r.str("reasonCode"),
		ReasonDetail:    r.str("reasonDetail"),
	}
	switch e.Disposition {
	case "", "recorded", "rejected":
	default:
		r.fail("disposition", "%q is not a ledger disposition (recorded or rejected)", e.Disposition)
	}
	return e
}
