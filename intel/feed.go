package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openvultron/vultron/cases"
)

// Kind is what a signal says happened in the world: the evidence for one
// of the case-state events of the public world (pxa).
type Kind string

// The kinds of signal.
const (
	Attacks       Kind = "attacks"        // attacks observed: CA
	ExploitPublic Kind = "exploit_public" // an exploit is public: CX
	Public        Kind = "public"         // the vulnerability is public: CP
)

// Kinds returns the kinds of signal.
func Kinds() []Kind { return []Kind{Attacks, ExploitPublic, Public} }

// Signal is one entry of a feed: a vulnerability, by its id and aliases,
// and what the feed says of it.
type Signal struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Kind    Kind     `json:"kind"`
	// Source is the feed that listed it (its URL or file) and Detail the
	// feed's own words, such as a KEV entry's vendor, product and name.
	Source string    `json:"source"`
	Detail string    `json:"detail,omitempty"`
	Date   time.Time `json:"date,omitzero"`
}

// IDs returns the signal's id and aliases.
func (s Signal) IDs() []string { return append([]string{s.ID}, s.Aliases...) }

// Feed is what one fetch of a source said.
type Feed struct {
	Source  string
	Format  string // FormatKEV or FormatSimple
	Signals []Signal
}

// The formats a feed may have.
const (
	// FormatKEV is the CISA Known Exploited Vulnerabilities catalog's JSON
	// (known_exploited_vulnerabilities.json): every listed CVE has been
	// exploited in the wild, so each is a signal of attacks.
	FormatKEV = "cisa-kev"
	// FormatSimple is this project's own format (docs/intelligence.md):
	// {"format": "vultron-intel/1", "signals": [{"id", "aliases", "kind",
	// "detail", "date"}]}.
	FormatSimple = "vultron-intel/1"
)

// Limits of a feed, checked before and while it is parsed.
const (
	// MaxFeedSize is the largest feed read, in bytes (the KEV catalog is
	// about 1.5 MB).
	MaxFeedSize = 32 << 20
	// MaxSignals is the most entries one feed may list.
	MaxSignals = 200_000
	// maxAliases is the most aliases one entry may carry.
	maxAliases = 32
)

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// Parse reads a feed in either format. It refuses, saying why and which
// entry, a feed too large, malformed, of neither format, or with an entry
// whose id or kind is not one.
func Parse(data []byte, source string) (Feed, error) {
	fail := func(format string, args ...any) (Feed, error) {
		return Feed{}, fmt.Errorf("intelligence feed %s: %s", source, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxFeedSize {
		return fail("%d bytes, over the %d a feed may have", len(data), MaxFeedSize)
	}
	var probe struct {
		Format          string          `json:"format"`
		Signals         json.RawMessage `json:"signals"`
		Vulnerabilities json.RawMessage `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fail("not JSON: %v", err)
	}
	switch {
	case probe.Vulnerabilities != nil:
		return parseKEV(data, source)
	case probe.Signals != nil:
		if probe.Format != FormatSimple {
			return fail("format %q is not %q", probe.Format, FormatSimple)
		}
		return parseSimple(data, source)
	}
	return fail(`neither a CISA KEV catalog (a "vulnerabilities" list) nor a %s feed (a "signals" list)`, FormatSimple)
}

func parseKEV(data []byte, source string) (Feed, error) {
	var kev struct {
		Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &kev); err != nil {
		return Feed{}, fmt.Errorf("intelligence feed %s: the KEV catalog: %s", source, decodeProblem(err))
	}
	if len(kev.Vulnerabilities) > MaxSignals {
		return Feed{}, fmt.Errorf("intelligence feed %s lists %d vulnerabilities, over the %d a feed may", source, len(kev.Vulnerabilities), MaxSignals)
	}
	f := Feed{Source: source, Format: FormatKEV}
	for i, raw := range kev.Vulnerabilities {
		var v struct {
			CVE     string `json:"cveID"`
			Vendor  string `json:"vendorProject"`
			Product string `json:"product"`
			Name    string `json:"vulnerabilityName"`
			Added   string `json:"dateAdded"`
		}
		if err := decodeEntry(raw, &v, false, "cveID"); err != nil {
			return Feed{}, fmt.Errorf("intelligence feed %s: vulnerability %d%s", source, i+1, err)
		}
		id := strings.ToUpper(strings.TrimSpace(v.CVE))
		if !cveID.MatchString(id) {
			return Feed{}, fmt.Errorf("intelligence feed %s: vulnerability %d: cveID %q is not a CVE id such as CVE-2021-44228", source, i+1, v.CVE)
		}
		s := Signal{ID: id, Kind: Attacks, Source: source, Detail: clip(strings.TrimSpace(v.Vendor + " " + v.Product + ": " + v.Name))}
		if t, err := time.Parse(time.DateOnly, v.Added); err == nil {
			s.Date = t
		}
		f.Signals = append(f.Signals, s)
	}
	return f, nil
}

func parseSimple(data []byte, source string) (Feed, error) {
	var doc struct {
		Format  string            `json:"format"`
		Signals []json.RawMessage `json:"signals"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return Feed{}, fmt.Errorf("intelligence feed %s: %s", source, decodeProblem(err))
	}
	if len(doc.Signals) > MaxSignals {
		return Feed{}, fmt.Errorf("intelligence feed %s lists %d signals, over the %d a feed may", source, len(doc.Signals), MaxSignals)
	}
	f := Feed{Source: source, Format: FormatSimple}
	for i, raw := range doc.Signals {
		where := fmt.Sprintf("intelligence feed %s: signal %d", source, i+1)
		var e struct {
			ID      string   `json:"id"`
			Aliases []string `json:"aliases"`
			Kind    Kind     `json:"kind"`
			Detail  string   `json:"detail"`
			Date    string   `json:"date"`
		}
		if err := decodeEntry(raw, &e, true, "id"); err != nil {
			return Feed{}, fmt.Errorf("%s%s", where, err)
		}
		id, ok := cases.NormalVulnerabilityID(e.ID)
		if !ok {
			return Feed{}, fmt.Errorf("%s: id %q is not a vulnerability id such as CVE-2026-1234", where, e.ID)
		}
		where += fmt.Sprintf(" (id %q)", e.ID)
		if e.Kind != Attacks && e.Kind != ExploitPublic && e.Kind != Public {
			return Feed{}, fmt.Errorf("%s: kind %q is not attacks, exploit_public or public", where, e.Kind)
		}
		if len(e.Aliases) > maxAliases {
			return Feed{}, fmt.Errorf("%s has %d aliases, over the %d an entry may", where, len(e.Aliases), maxAliases)
		}
		s := Signal{ID: id, Kind: e.Kind, Source: source, Detail: clip(e.Detail)}
		for _, a := range e.Aliases {
			alias, ok := cases.NormalVulnerabilityID(a)
			if !ok {
				return Feed{}, fmt.Errorf("%s: alias %q is not a vulnerability id", where, a)
			}
			s.Aliases = append(s.Aliases, alias)
		}
		if e.Date != "" {
			t, err := time.Parse(time.DateOnly, e.Date)
			if err != nil {
				return Feed{}, fmt.Errorf("%s: date %q is not a date such as 2026-12-01", where, e.Date)
			}
			s.Date = t
		}
		f.Signals = append(f.Signals, s)
	}
	return f, nil
}

// entryError is why an entry of a feed could not be decoded: the entry's
// id, when it has one, and what was wrong, to follow the entry's place.
type entryError struct {
	idKey, id string
	err       error
}

func (e *entryError) Error() string {
	if e.id == "" {
		return ": " + decodeProblem(e.err)
	}
	return fmt.Sprintf(" (%s %q): %s", e.idKey, e.id, decodeProblem(e.err))
}

func (e *entryError) Unwrap() error { return e.err }

// decodeEntry decodes one entry of a feed into v, refusing the members v
// lacks when strict. Its error, an *entryError, carries the entry's id
// (the string in its member idKey, clipped) when it has one.
func decodeEntry(raw json.RawMessage, v any, strict bool, idKey string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var members map[string]json.RawMessage
	var id string
	if json.Unmarshal(raw, &members) == nil && json.Unmarshal(members[idKey], &id) == nil {
		id = clip(id)
	}
	return &entryError{idKey: idKey, id: id, err: err}
}

// decodeProblem says what the JSON decoder refused, in the feed's terms
// rather than the decoder's Go types.
func decodeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Sprintf("it is a %s, not an object", te.Value)
		}
		return fmt.Sprintf("member %q cannot be a %s", te.Field, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// clip bounds a feed's text kept beside a signal.
func clip(s string) string {
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
