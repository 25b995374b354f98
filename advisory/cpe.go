package advisory

import "strings"

// IsCPE reports whether s is a CPE name as CSAF 2.0 and CVE JSON 5 take
// one: a CPE 2.3 formatted string (cpe:2.3:PART followed by ten
// attributes: VENDOR, PRODUCT, VERSION, UPDATE, EDITION, LANGUAGE,
// SW_EDITION, TARGET_SW, TARGET_HW, OTHER) or a CPE 2.2 URI (cpe:/PART
// followed by at most six components).
func IsCPE(s string) bool {
	if rest, ok := strings.CutPrefix(s, "cpe:2.3:"); ok {
		return isFormattedCPE(rest)
	}
	if len(s) >= 5 && s[0] == 'c' && strings.EqualFold(s[:5], "cpe:/") {
		return isURICPE(s[5:])
	}
	return false
}

// isURICPE checks what follows "cpe:/": an optional part letter, then at
// most six components, each after a colon, of letters, digits and
// . _ - ~ % (its percent-encoded characters).
func isURICPE(s string) bool {
	if s != "" && strings.IndexByte("ahoAHO", s[0]) >= 0 {
		s = s[1:]
	}
	if s == "" {
		return true
	}
	if s[0] != ':' {
		return false
	}
	comps := strings.Split(s[1:], ":")
	if len(comps) > 6 {
		return false
	}
	for _, c := range comps {
		for i := range len(c) {
			if !isAlnum(c[i]) && strings.IndexByte("._-~%", c[i]) < 0 {
				return false
			}
		}
	}
	return true
}

// cpeEscapable are the characters a CPE 2.3 attribute value holds only
// escaped with a backslash.
const cpeEscapable = "\\*?!\"#$%&'()+,/:;<=>@[]^`{|}~"

// isFormattedCPE checks what follows "cpe:2.3:": the part (a, o, h, or
// the logical values * or -) and ten attributes, separated by colons
// that no backslash escapes.
func isFormattedCPE(s string) bool {
	var attrs []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i == len(s) {
				return false
			}
		case ':':
			attrs = append(attrs, s[start:i])
			start = i + 1
		}
	}
	attrs = append(attrs, s[start:])
	if len(attrs) != 11 || len(attrs[0]) != 1 || strings.IndexByte("aho*-", attrs[0][0]) < 0 {
		return false
	}
	for i, v := range attrs[1:] {
		if i == 5 {
			if !isCPELanguage(v) {
				return false
			}
		} else if !isCPEValue(v) {
			return false
		}
	}
	return true
}

// isCPELanguage reports whether v is a CPE 2.3 language: * or -, or a
// tag of two or three letters with an optional region of two letters or
// three digits (en, en-US, es-419).
func isCPELanguage(v string) bool {
	if v == "*" || v == "-" {
		return true
	}
	lang, region, hasRegion := strings.Cut(v, "-")
	if len(lang) < 2 || len(lang) > 3 || !all(lang, isLetter) {
		return false
	}
	if !hasRegion {
		return true
	}
	return len(region) == 2 && all(region, isLetter) || len(region) == 3 && all(region, isDigit)
}

// isCPEValue reports whether v is a CPE 2.3 attribute value: * (any) or
// - (not applicable), or letters, digits, - . _ and escaped characters,
// with either one * or any number of ? at each end as wildcards.
func isCPEValue(v string) bool {
	if v == "*" || v == "-" {
		return true
	}
	// Leading wildcards.
	if strings.HasPrefix(v, "*") {
		v = v[1:]
	} else {
		v = strings.TrimLeft(v, "?")
	}
	body := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			if i+1 == len(v) || strings.IndexByte(cpeEscapable, v[i+1]) < 0 {
				return false
			}
			i++
			body++
		case isAlnum(c) || c == '-' || c == '.' || c == '_':
			body++
		case c == '*' || c == '?':
			// Trailing wildcards: one *, or only ?s, up to the end.
			rest := v[i:]
			return body > 0 && (rest == "*" || strings.Trim(rest, "?") == "")
		default:
			return false
		}
	}
	return body > 0
}

func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func all(s string, f func(byte) bool) bool {
	for i := range len(s) {
		if !f(s[i]) {
			return false
		}
	}
	return true
}
