// Package urlhost says whether two URLs, such as an actor's id and its
// key's, its inbox, an activity or object it made, or a case it announces,
// are on the same host: the check that keeps one host from speaking for
// another. It is the one such check of the module (actor, cases, inbox and
// outbox use it); pure.
package urlhost

import (
	"net"
	"net/url"
	"strings"
)

// Same reports whether a and b are URLs on the same host and port: the
// host compared without regard to case, and the default port of a URL's
// scheme (80 for http, 443 for https) the same as none, so that an http
// actor may name an https inbox on its host. A URL without a host is on
// no host.
func Same(a, b string) bool {
	ka, ok := key(a)
	if !ok {
		return false
	}
	kb, ok := key(b)
	return ok && ka == kb
}

// key returns the lower-cased host of raw and its port, without the
// default port of raw's scheme.
func key(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}
