package policy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/openvultron/vultron/internal/httplex"
	"github.com/openvultron/vultron/problem"
)

// A node behind a reverse proxy sees every request come from the proxy.
// ClientIP finds the client behind it from the forwarding headers, and
// believes them only from a trusted proxy: the headers are whatever the
// sender wrote, so from anyone else they are ignored.
//
// The headers are parsed here rather than with a library: the standard
// library has no parser for RFC 7239 Forwarded, and what matters is the
// walk from the right that stops at the first address that is not a
// trusted proxy, a few lines on top of the token and quoted-string
// scanning of internal/httplex.

// maxForwardedHops bounds the hops read from the forwarding headers.
const maxForwardedHops = 64

// ParseTrustedProxies parses the networks of trusted reverse proxies, each
// a CIDR prefix (10.0.0.0/8, fd00::/8) or a single address.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if pfx, err := netip.ParsePrefix(s); err == nil {
			if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
				// Addresses are compared unmapped.
				pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
			}
			out = append(out, pfx.Masked())
			continue
		}
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return nil, fmt.Errorf("trusted proxy %q is not a CIDR prefix (such as 10.0.0.0/8) or an IP address", s)
		}
		addr = addr.Unmap()
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out, nil
}

// ParseProxyHeaders reads the names of the forwarding headers the trusted
// proxies set, "Forwarded" or "X-Forwarded-For" in any case, and says
// which are read; none names X-Forwarded-For, the header nginx and most
// proxies append to.
func ParseProxyHeaders(list []string) (fwd, xff bool, err error) {
	if len(list) == 0 {
		return false, true, nil
	}
	for _, s := range list {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "forwarded":
			fwd = true
		case "x-forwarded-for":
			xff = true
		default:
			return false, false, fmt.Errorf("forwarding header %q is not Forwarded or X-Forwarded-For", problem.Clip(s, 200))
		}
	}
	return fwd, xff, nil
}

// trusted reports whether addr is a trusted proxy.
func (p *Policy) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, pfx := range p.proxies {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// ClientIP returns the IP address of the client that sent r; the node uses
// it, computed once per request, for the per-IP rate limit, the audit
// records and the logs.
//
// It is the address of r's immediate peer (RemoteAddr) unless that peer is
// a trusted proxy (Config.TrustedProxies). Then the chain of addresses in
// the header the trusted proxies append to (Config.ProxyHeaders: the
// X-Forwarded-For header by default, or the Forwarded header, RFC 7239,
// the for= of each element) is walked from the right, the end the nearest
// proxy appended, skipping hops that are themselves trusted proxies; the
// first untrusted address is the client. The header the proxies do not
// set is never read: it reaches the node as the client wrote it. A hop a trusted proxy reports as
// "unknown" or by an obfuscated identifier cannot be told apart from its
// neighbours, so the proxy that reported it stands for it. If every hop is
// trusted, the leftmost is the client.
//
// When both headers are configured and present they must name the same
// client: a proxy that appends to one passes the other through as the
// client wrote it.
// Malformed or conflicting headers from a trusted proxy are logged as a
// warning (sampled) and the proxy's own address is returned; a sender can
// thus never choose the address it is counted under.
func (p *Policy) ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap().WithZone("")
	if len(p.proxies) == 0 || !p.trusted(peer) {
		return peer.String()
	}
	client, err := forwardedClient(peer, r.Header, p.readFwd, p.readXFF, p.trusted)
	if err != nil {
		p.proxyLog.Warn().Err(err).Str("proxy", peer.String()).
			Msg("a trusted proxy sent forwarding headers that cannot be used; counting the request under the proxy's address")
		return peer.String()
	}
	return client.String()
}

// hop is one address of a forwarding chain; known is false for "unknown",
// an obfuscated identifier or a Forwarded element without for=.
type hop struct {
	addr  netip.Addr
	known bool
}

// forwardedClient walks the forwarding headers h that the trusted proxy
// peer sent, as described on ClientIP: Forwarded when readFwd,
// X-Forwarded-For when readXFF. The other is ignored: a proxy that does
// not set it passes it through as the client wrote it.
func forwardedClient(peer netip.Addr, h http.Header, readFwd, readXFF bool, trusted func(netip.Addr) bool) (netip.Addr, error) {
	var fwd, xff []string
	if readFwd {
		fwd = h.Values("Forwarded")
	}
	if readXFF {
		xff = h.Values("X-Forwarded-For")
	}
	if len(fwd) == 0 && len(xff) == 0 {
		return peer, nil
	}
	var fromFwd, fromXFF netip.Addr
	if len(fwd) > 0 {
		hops, err := parseForwarded(fwd)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("Forwarded: %w", err)
		}
		fromFwd = walkHops(peer, hops, trusted)
	}
	if len(xff) > 0 {
		hops, err := parseXForwardedFor(xff)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("X-Forwarded-For: %w", err)
		}
		fromXFF = walkHops(peer, hops, trusted)
	}
	switch {
	case !fromFwd.IsValid():
		return fromXFF, nil
	case !fromXFF.IsValid(), fromFwd == fromXFF:
		return fromFwd, nil
	}
	return netip.Addr{}, fmt.Errorf("Forwarded names client %s and X-Forwarded-For client %s", fromFwd, fromXFF)
}

// walkHops returns the client of a chain of hops (leftmost first) that the
// trusted peer forwarded.
func walkHops(peer netip.Addr, hops []hop, trusted func(netip.Addr) bool) netip.Addr {
	reporter := peer // the trusted proxy that wrote the hop being read
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if !h.known {
			return reporter
		}
		if !trusted(h.addr) {
			return h.addr
		}
		reporter = h.addr
	}
	return reporter
}

var errTooManyHops = fmt.Errorf("more than %d hops", maxForwardedHops)

// parseXForwardedFor reads the comma-separated addresses of the
// X-Forwarded-For header lines, in order. An address may carry a port
// (192.0.2.1:8080, [2001:db8::1]:8080); "unknown" is an unknown hop.
func parseXForwardedFor(lines []string) ([]hop, error) {
	var hops []hop
	for _, line := range lines {
		for _, item := range strings.Split(line, ",") {
			item = strings.TrimSpace(item)
			if len(hops) == maxForwardedHops {
				return nil, errTooManyHops
			}
			switch {
			case item == "":
				return nil, errors.New("an empty element")
			case strings.EqualFold(item, "unknown"):
				hops = append(hops, hop{})
				continue
			}
			addr, err := netip.ParseAddr(item)
			if err != nil {
				ap, perr := netip.ParseAddrPort(item)
				if perr != nil {
					return nil, fmt.Errorf("%q is not an IP address", problem.Clip(item, 200))
				}
				addr = ap.Addr()
			}
			if addr.Zone() != "" {
				return nil, fmt.Errorf("%q carries a zone", problem.Clip(item, 200))
			}
			hops = append(hops, hop{addr: addr.Unmap(), known: true})
		}
	}
	return hops, nil
}

// parseForwarded reads the for= node of every element of the Forwarded
// header lines (RFC 7239 §4), in order: elements separated by commas,
// pairs within one by semicolons, each pair token=value with the value a
// token or a quoted string. Parameter names are case-insensitive and may
// not repeat within an element; an element without for= is an unknown hop.
func parseForwarded(lines []string) ([]hop, error) {
	var hops []hop
	for _, line := range lines {
		s := line
		for {
			h, rest, empty, err := parseForwardedElement(s)
			if err != nil {
				return nil, err
			}
			if !empty {
				if len(hops) == maxForwardedHops {
					return nil, errTooManyHops
				}
				hops = append(hops, h)
			}
			if rest == "" {
				break
			}
			s = rest[1:] // the comma
		}
	}
	if len(hops) == 0 {
		return nil, errors.New("no element")
	}
	return hops, nil
}

// parseForwardedElement reads one element from the start of s up to the
// next comma outside a quoted string; rest starts at that comma or is "".
// An element with no pair at all is empty (list syntax allows it).
func parseForwardedElement(s string) (h hop, rest string, empty bool, err error) {
	seen := map[string]bool{}
	node, hasFor := "", false
	for {
		s = httplex.TrimOWS(s)
		if s == "" || s[0] == ',' {
			break
		}
		if s[0] == ';' {
			s = s[1:]
			continue
		}
		tok, after := httplex.Token(s)
		if tok == "" || after == "" || after[0] != '=' {
			return hop{}, "", false, errors.New("an element is not a list of name=value pairs")
		}
		name := strings.ToLower(tok)
		val, after, err := httplex.Value(after[1:])
		if err != nil {
			return hop{}, "", false, fmt.Errorf("%s=: %w", problem.Clip(name, 200), err)
		}
		if seen[name] {
			return hop{}, "", false, fmt.Errorf("an element repeats %s=", problem.Clip(name, 200))
		}
		seen[name] = true
		if name == "for" {
			node, hasFor = val, true
		}
		s = httplex.TrimOWS(after)
		if s != "" && s[0] != ',' && s[0] != ';' {
			return hop{}, "", false, fmt.Errorf("unexpected text after %s=", problem.Clip(name, 200))
		}
	}
	if len(seen) == 0 {
		return hop{}, s, true, nil
	}
	if hasFor {
		if h, err = parseForwardedNode(node); err != nil {
			return hop{}, "", false, err
		}
	}
	return h, s, false, nil
}

// parseForwardedNode reads a node of RFC 7239 §6: an IPv4 address, an IPv6
// address in brackets, "unknown" or an obfuscated identifier ("_" then
// letters, digits, ".", "_", "-"), optionally followed by ":" and a port
// or an obfuscated port.
func parseForwardedNode(v string) (hop, error) {
	name, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return hop{}, fmt.Errorf("node %q has no closing bracket", problem.Clip(v, 200))
		}
		name, port = v[1:end], v[end+1:]
		addr, err := netip.ParseAddr(name)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return hop{}, fmt.Errorf("node %q is not a bracketed IPv6 address", problem.Clip(v, 200))
		}
		if err := checkNodePort(port, v); err != nil {
			return hop{}, err
		}
		return hop{addr: addr.Unmap(), known: true}, nil
	}
	if i := strings.IndexByte(v, ':'); i >= 0 {
		name, port = v[:i], v[i:]
	}
	if err := checkNodePort(port, v); err != nil {
		return hop{}, err
	}
	switch {
	case strings.EqualFold(name, "unknown"):
		return hop{}, nil
	case isObfuscated(name):
		return hop{}, nil
	}
	addr, err := netip.ParseAddr(name)
	if err != nil || !addr.Is4() {
		return hop{}, fmt.Errorf("node %q is not an IPv4 address, a bracketed IPv6 address, unknown or an obfuscated identifier", problem.Clip(v, 200))
	}
	return hop{addr: addr, known: true}, nil
}

// checkNodePort accepts "" or ":" followed by a port number or an
// obfuscated port.
func checkNodePort(port, node string) error {
	if port == "" {
		return nil
	}
	p, ok := strings.CutPrefix(port, ":")
	if ok && isObfuscated(p) {
		return nil
	}
	if n, err := strconv.Atoi(p); ok && err == nil && n >= 0 && n <= 65535 && len(p) <= 5 && p[0] != '+' && p[0] != '-' {
		return nil
	}
	return fmt.Errorf("node %q has an invalid port", problem.Clip(node, 200))
}

// isObfuscated reports whether s is an obfuscated node or port of RFC 7239
// §6.3: "_" followed by at least one letter, digit, ".", "_" or "-".
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
