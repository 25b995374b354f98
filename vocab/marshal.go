package vocab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Marshal serialises o as a Vultron document: AS2 camelCase member names,
// "@context" first and set to the Vultron context URI as a single string
// (nested objects inherit it and carry none), then id and type, then the
// common properties, the type's own properties, and the extra properties
// in name order. Absent values are left out, so no member is null.
func Marshal(o Object) ([]byte, error) {
	if o == nil {
		return nil, fmt.Errorf("marshal: no object")
	}
	top := members{{"@context", VultronContext}}
	top = append(top, objectMembers(o)...)
	var buf bytes.Buffer
	if err := encodeValue(&buf, top); err != nil {
		return nil, fmt.Errorf("marshal %s: %w", o.Common().Type, err)
	}
	return buf.Bytes(), nil
}

// MarshalDocument serialises the document's object with Marshal.
func MarshalDocument(d *Document) ([]byte, error) { return Marshal(d.Object) }

// member is one name/value pair of an ordered JSON object.
type member struct {
	name  string
	value any
}

// members is a JSON object whose members are written in slice order.
type members []member

func (ms *members) str(name, v string) {
	if v != "" {
		*ms = append(*ms, member{name, v})
	}
}

func (ms *members) ref(name string, r Ref) {
	if !r.IsZero() {
		*ms = append(*ms, member{name, refValue(r)})
	}
}

func (ms *members) refs(name string, rs Refs) {
	switch {
	case rs.Single && len(rs.Items) == 1:
		*ms = append(*ms, member{name, refValue(rs.Items[0])})
	case rs.Items != nil:
		ms.list(name, rs.Items)
	}
}

func (ms *members) list(name string, items []Ref) {
	if items == nil {
		return
	}
	vs := make([]any, 0, len(items))
	for _, r := range items {
		vs = append(vs, refValue(r))
	}
	*ms = append(*ms, member{name, vs})
}

func (ms *members) strs(name string, v []string) {
	if v != nil {
		*ms = append(*ms, member{name, v})
	}
}

func (ms *members) strMap(name string, v map[string]string) {
	if v != nil {
		*ms = append(*ms, member{name, v})
	}
}

func (ms *members) opaque(name string, v map[string]any) {
	if v != nil {
		*ms = append(*ms, member{name, v})
	}
}

func (ms *members) boolp(name string, v *bool) {
	if v != nil {
		*ms = append(*ms, member{name, *v})
	}
}

func (ms *members) intp(name string, v *int64) {
	if v != nil {
		*ms = append(*ms, member{name, json.Number(fmt.Sprint(*v))})
	}
}

func refValue(r Ref) any {
	if r.Object != nil {
		return objectMembers(r.Object)
	}
	return r.IRI
}

// objectMembers lists the members of o in the serialisation order.
func objectMembers(o Object) members {
	b := o.Common()
	var ms members
	ms.str("id", b.ID)
	ms.str("type", b.Type)
	ms.str("name", b.Name)
	ms.str("summary", b.Summary)
	ms.str("content", b.Content)
	ms.str("mediaType", b.MediaType)
	ms.str("published", b.Published)
	ms.str("updated", b.Updated)
	ms.str("startTime", b.StartTime)
	ms.str("endTime", b.EndTime)
	ms.str("duration", b.Duration)
	ms.ref("context", b.Context)
	ms.ref("inReplyTo", b.InReplyTo)
	ms.refs("attributedTo", b.AttributedTo)
	ms.refs("to", b.To)
	ms.refs("cc", b.Cc)
	ms.refs("bto", b.Bto)
	ms.refs("bcc", b.Bcc)
	ms.refs("audience", b.Audience)
	switch x := o.(type) {
	case *Activity:
		ms.ref("actor", x.Actor)
		ms.ref("object", x.Object)
		ms.ref("target", x.Target)
		ms.ref("origin", x.Origin)
		ms.ref("instrument", x.Instrument)
		ms.ref("result", x.Result)
		ms.strs("roles", x.Roles)
		ms.list("oneOf", x.OneOf)
		ms.list("anyOf", x.AnyOf)
	case *Actor:
		ms.str("preferredUsername", x.PreferredUsername)
		ms.ref("inbox", x.Inbox)
		ms.ref("outbox", x.Outbox)
		ms.ref("following", x.Following)
		ms.ref("followers", x.Followers)
		ms.ref("liked", x.Liked)
		ms.list("streams", x.Streams)
		ms.opaque("endpoints", x.Endpoints)
		ms.ref("embargoPolicy", x.EmbargoPolicy)
	case *VulnerabilityCase:
		ms.list("caseParticipants", x.CaseParticipants)
		ms.strMap("actorParticipantIndex", x.ActorParticipantIndex)
		ms.list("vulnerabilityReports", x.VulnerabilityReports)
		ms.list("caseStatuses", x.CaseStatuses)
		if x.CaseStatus != nil {
			ms = append(ms, member{"caseStatus", objectMembers(x.CaseStatus)})
		}
		ms.list("notes", x.Notes)
		ms.str("genesisHash", x.GenesisHash)
		ms.ref("activeEmbargo", x.ActiveEmbargo)
		ms.list("proposedEmbargoes", x.ProposedEmbargoes)
		ms.strMap("pendingEmbargoProposalIndex", x.PendingEmbargoProposalIndex)
		ms.strMap("recommendationRecommenderIndex", x.RecommendationRecommenderIndex)
		ms.list("caseActivity", x.CaseActivity)
		ms.strs("parentCases", x.ParentCases)
		ms.strs("childCases", x.ChildCases)
		ms.strs("siblingCases", x.SiblingCases)
	case *CaseParticipant:
		ms.strs("caseRoles", x.CaseRoles)
		ms.list("participantStatuses", x.ParticipantStatuses)
		ms.strs("acceptedEmbargoIds", x.AcceptedEmbargoIDs)
		ms.str("embargoConsentState", x.EmbargoConsentState)
		ms.str("participantCaseName", x.ParticipantCaseName)
	case *ParticipantStatus:
		ms.str("rmState", x.RMState)
		ms.str("vfdState", x.VFDState)
		ms.boolp("caseEngagement", x.CaseEngagement)
		ms.boolp("embargoAdherence", x.EmbargoAdherence)
		ms.str("emConsentState", x.EMConsentState)
		ms.strs("cvdRole", x.CVDRole)
		ms.str("trackingId", x.TrackingID)
		if x.CaseStatus != nil {
			ms = append(ms, member{"caseStatus", objectMembers(x.CaseStatus)})
		}
	case *CaseStatus:
		ms.str("emState", x.EMState)
		ms.str("pxaState", x.PXAState)
	case *EmbargoPolicy:
		ms.str("actorId", x.ActorID)
		ms.str("inbox", x.Inbox)
		ms.str("preferredDuration", x.PreferredDuration)
		ms.str("minimumDuration", x.MinimumDuration)
		ms.str("maximumDuration", x.MaximumDuration)
		ms.str("notes", x.Notes)
	case *CaseProposal:
		ms.ref("object", x.Object)
		ms.ref("target", x.Target)
	case *CaseParticipantRole:
		ms.str("role", x.Role)
	case *CaseReference:
		ms.strs("tags", x.Tags)
	case *VulnerabilityRecord:
		ms.strs("aliases", x.Aliases)
	case *ProductStatus:
		ms.str("vendor", x.Vendor)
		ms.str("purl", x.PURL)
		ms.str("cpe", x.CPE)
		ms.str("versions", x.Versions)
		ms.str("status", x.Status)
		ms.str("justification", x.Justification)
	case *CaseLedgerEntry:
		ms.str("caseId", x.CaseID)
		ms.intp("logIndex", x.LogIndex)
		ms.str("disposition", x.Disposition)
		ms.intp("term", x.Term)
		ms.str("logObjectId", x.LogObjectID)
		ms.str("eventType", x.EventType)
		ms.opaque("payloadSnapshot", x.PayloadSnapshot)
		ms.str("prevLogHash", x.PrevLogHash)
		ms.str("entryHash", x.EntryHash)
		ms.str("receivedAt", x.ReceivedAt)
		ms.str("reasonCode", x.ReasonCode)
		ms.str("reasonDetail", x.ReasonDetail)
	}
	names := make([]string, 0, len(b.Extra))
	for k := range b.Extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if b.Extra[k] != nil {
			ms = append(ms, member{k, b.Extra[k]})
		}
	}
	return ms
}

// encodeValue writes v as JSON without escaping HTML characters. Maps are
// written in key order, members in slice order.
func encodeValue(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case string:
		return encodeString(buf, x)
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case json.Number:
		if !json.Valid([]byte(x)) {
			return fmt.Errorf("invalid number %q", string(x))
		}
		buf.WriteString(string(x))
	case []string:
		buf.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeString(buf, s); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeValue(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case members:
		buf.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeString(buf, m.name); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := encodeValue(buf, m.value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case map[string]string:
		ms := make(members, 0, len(x))
		for _, k := range sortedKeys(x) {
			ms = append(ms, member{k, x[k]})
		}
		return encodeValue(buf, ms)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ms := make(members, 0, len(x))
		for _, k := range keys {
			ms = append(ms, member{k, x[k]})
		}
		return encodeValue(buf, ms)
	default:
		return fmt.Errorf("cannot encode a %T", v)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// encodeString writes s as a JSON string exactly as encoding/json does
// with HTML escaping off (TestEncodeStringMatchesEncodingJSON): quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, and U+2028 and U+2029 escaped for JavaScript. Every name and
// string of every activity the node emits goes through it, so it writes
// into buf directly rather than through an encoder per string.
func encodeString(buf *bytes.Buffer, s string) error {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case '\b':
				buf.WriteString(`\b`)
			case '\f':
				buf.WriteString(`\f`)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			default:
				buf.WriteString(`\u00`)
				buf.WriteByte(hex[c>>4])
				buf.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf.WriteString(s[start:i])
			buf.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			buf.WriteString(s[start:i])
			buf.WriteString(`\u202`)
			buf.WriteByte(hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
	return nil
}
