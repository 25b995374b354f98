package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Dispositions of a ledger entry: the Case Actor either recorded the
// activity the entry names or rejected it.
const (
	Recorded = "recorded"
	Rejected = "rejected"
)

// TypeName is the value of the wire object's "type" member.
const TypeName = "CaseLedgerEntry"

// TimeFormat is the layout of every time the package writes or hashes;
// times are always in UTC. See FormatTime.
const TimeFormat = time.RFC3339Nano

// MaxInteger is the largest logIndex or term an entry may carry: integers
// beyond it are not exact as IEEE-754 doubles, which JCS hashes.
const MaxInteger = 1 << 53

// ErrInvalidEntry is wrapped by every error that reports an entry whose
// fields break the rules of the wire form.
var ErrInvalidEntry = errors.New("invalid ledger entry")

// Entry is one entry of a case's ledger, with its wire member names.
// Term is nil when the Case Actor keeps no term; ReasonCode and
// ReasonDetail are set on rejected entries.
type Entry struct {
	CaseID          string          `json:"caseId"`
	LogIndex        int64           `json:"logIndex"`
	Disposition     string          `json:"disposition"`
	Term            *int64          `json:"term,omitempty"`
	LogObjectID     string          `json:"logObjectId"`
	EventType       string          `json:"eventType"`
	PayloadSnapshot json.RawMessage `json:"payloadSnapshot"`
	PrevLogHash     string          `json:"prevLogHash"`
	EntryHash       string          `json:"entryHash"`
	ReceivedAt      string          `json:"receivedAt"`
	ReasonCode      string          `json:"reasonCode,omitempty"`
	ReasonDetail    string          `json:"reasonDetail,omitempty"`
}

// FormatTime writes t in the package's time format: UTC, RFC 3339 with as
// many fractional digits as t needs.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeFormat)
}

// GenesisHash returns the hash entry 0 of a case's ledger chains to:
// SHA-256 (lowercase hex) of caseID + "|" + FormatTime(published) + "|" +
// caseActorID.
func GenesisHash(caseID string, published time.Time, caseActorID string) string {
	sum := sha256.Sum256([]byte(caseID + "|" + FormatTime(published) + "|" + caseActorID))
	return hex.EncodeToString(sum[:])
}

// ComputeHash returns the hash of e: SHA-256 (lowercase hex) of the JCS
// serialization of e's wire object without entryHash. It fails when the
// payload snapshot is not canonicalizable JSON or a string field is not
// valid UTF-8; it does not check the other field rules (see Seal).
func (e *Entry) ComputeHash() (string, error) {
	for _, s := range [...]string{e.CaseID, e.Disposition, e.LogObjectID, e.EventType,
		e.PrevLogHash, e.ReceivedAt, e.ReasonCode, e.ReasonDetail} {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("%w: entry %d of case %q: a string field is not valid UTF-8", ErrInvalidEntry, e.LogIndex, e.CaseID)
		}
	}
	b, err := e.appendWire(make([]byte, 0, 512+len(e.PayloadSnapshot)), false)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Seal checks e's fields and sets its EntryHash.
func (e *Entry) Seal() error {
	if err := e.validate(false); err != nil {
		return err
	}
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.EntryHash = h
	return nil
}

// Marshal returns the wire object of e in canonical (JCS) form, entryHash
// included. It checks e's fields but does not recompute its hash.
func Marshal(e Entry) ([]byte, error) {
	if err := e.validate(true); err != nil {
		return nil, err
	}
	return e.appendWire(make([]byte, 0, 512+len(e.PayloadSnapshot)), true)
}

// appendWire appends e's wire object in canonical form: members in JCS
// order (ASCII names, so byte order), optional members left out when unset.
func (e *Entry) appendWire(dst []byte, withHash bool) ([]byte, error) {
	if !json.Valid(e.PayloadSnapshot) || !utf8.Valid(e.PayloadSnapshot) {
		_, err := Canonicalize(e.PayloadSnapshot) // says what is wrong
		return nil, fmt.Errorf("%w: payloadSnapshot: %w", ErrInvalidEntry, err)
	}
	str := func(name, v string) {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		dst = appendString(dst, v)
	}
	dst = append(dst, `{"caseId":`...)
	dst = appendString(dst, e.CaseID)
	str("disposition", e.Disposition)
	if withHash {
		str("entryHash", e.EntryHash)
	}
	str("eventType", e.EventType)
	dst = append(dst, `,"logIndex":`...)
	dst = strconv.AppendInt(dst, e.LogIndex, 10)
	str("logObjectId", e.LogObjectID)
	dst = append(dst, `,"payloadSnapshot":`...)
	at := len(dst)
	dst, err := appendCanonical(dst, e.PayloadSnapshot)
	if err != nil {
		return nil, fmt.Errorf("%w: payloadSnapshot: %w", ErrInvalidEntry, err)
	}
	if dst[at] != '{' {
		return nil, fmt.Errorf("%w: payloadSnapshot is not a JSON object", ErrInvalidEntry)
	}
	str("prevLogHash", e.PrevLogHash)
	if e.ReasonCode != "" {
		str("reasonCode", e.ReasonCode)
	}
	if e.ReasonDetail != "" {
		str("reasonDetail", e.ReasonDetail)
	}
	str("receivedAt", e.ReceivedAt)
	if e.Term != nil {
		dst = append(dst, `,"term":`...)
		dst = strconv.AppendInt(dst, *e.Term, 10)
	}
	str("type", TypeName)
	return append(dst, '}'), nil
}

// Unmarshal reads an entry from its wire object and checks its fields.
// It accepts the object in any valid JSON spelling, ignores "@context",
// and refuses unknown and duplicate members. It does not check the
// entry's hash (see Verify and Replica.Offer).
func Unmarshal(data []byte) (Entry, error) {
	canon, err := Canonicalize(data)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(canon, &members); err != nil || members == nil {
		return Entry{}, fmt.Errorf("%w: not a JSON object", ErrInvalidEntry)
	}
	var e Entry
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		raw := members[name]
		var err error
		switch name {
		case "@context":
		case "type":
			var t string
			if err = json.Unmarshal(raw, &t); err == nil && t != TypeName {
				err = fmt.Errorf("is %q, not %q", t, TypeName)
			}
		case "caseId":
			err = json.Unmarshal(raw, &e.CaseID)
		case "disposition":
			err = json.Unmarshal(raw, &e.Disposition)
		case "logObjectId":
			err = json.Unmarshal(raw, &e.LogObjectID)
		case "eventType":
			err = json.Unmarshal(raw, &e.EventType)
		case "prevLogHash":
			err = json.Unmarshal(raw, &e.PrevLogHash)
		case "entryHash":
			err = json.Unmarshal(raw, &e.EntryHash)
		case "receivedAt":
			err = json.Unmarshal(raw, &e.ReceivedAt)
		case "reasonCode":
			err = json.Unmarshal(raw, &e.ReasonCode)
		case "reasonDetail":
			err = json.Unmarshal(raw, &e.ReasonDetail)
		case "logIndex":
			if string(raw) == "null" {
				err = errors.New("is null")
			} else {
				err = json.Unmarshal(raw, &e.LogIndex)
			}
		case "term":
			err = json.Unmarshal(raw, &e.Term)
		case "payloadSnapshot":
			if raw[0] != '{' {
				err = errors.New("is not a JSON object")
			}
			e.PayloadSnapshot = raw
		default:
			err = errors.New("is not a member of a ledger entry")
		}
		if err != nil {
			return Entry{}, fmt.Errorf("%w: %s: %w", ErrInvalidEntry, name, err)
		}
	}
	if _, ok := members["logIndex"]; !ok {
		return Entry{}, fmt.Errorf("%w: logIndex is missing", ErrInvalidEntry)
	}
	if err := e.validate(true); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// validate checks e's fields against the rules of the wire form; the
// entry hash is required when withHash is set. It does not parse the
// payload snapshot beyond its first byte: hashing does.
func (e *Entry) validate(withHash bool) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: entry %d of case %q: %s", ErrInvalidEntry, e.LogIndex, e.CaseID, fmt.Sprintf(format, args...))
	}
	for _, f := range []struct{ name, v string }{
		{"caseId", e.CaseID}, {"logObjectId", e.LogObjectID}, {"eventType", e.EventType},
	} {
		if f.v == "" {
			return fail("%s is empty", f.name)
		}
		if !utf8.ValidString(f.v) {
			return fail("%s is not valid UTF-8", f.name)
		}
	}
	if !utf8.ValidString(e.ReasonCode) || !utf8.ValidString(e.ReasonDetail) {
		return fail("reasonCode or reasonDetail is not valid UTF-8")
	}
	if e.Disposition != Recorded && e.Disposition != Rejected {
		return fail("disposition %q is neither %q nor %q", e.Disposition, Recorded, Rejected)
	}
	if e.LogIndex < 0 || e.LogIndex > MaxInteger {
		return fail("logIndex %d is outside [0, 2^53]", e.LogIndex)
	}
	if e.Term != nil && (*e.Term < 0 || *e.Term > MaxInteger) {
		return fail("term %d is outside [0, 2^53]", *e.Term)
	}
	if !isHash(e.PrevLogHash) {
		return fail("prevLogHash %q is not 64 lowercase hex digits", e.PrevLogHash)
	}
	if withHash && !isHash(e.EntryHash) {
		return fail("entryHash %q is not 64 lowercase hex digits", e.EntryHash)
	}
	t, err := time.Parse(TimeFormat, e.ReceivedAt)
	if err != nil {
		return fail("receivedAt %q is not an RFC 3339 time", e.ReceivedAt)
	}
	if FormatTime(t) != e.ReceivedAt {
		return fail("receivedAt %q is not written as %q (UTC, RFC 3339, no trailing zeros)", e.ReceivedAt, FormatTime(t))
	}
	if p := bytes.TrimLeft(e.PayloadSnapshot, " \t\r\n"); len(p) == 0 || p[0] != '{' {
		return fail("payloadSnapshot is not a JSON object")
	}
	return nil
}

// isHash reports whether s is 64 lowercase hexadecimal digits.
func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
