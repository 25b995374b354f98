package actor

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/openvultron/vultron/problem"
)

// JRDContentType is the media type of WebFinger answers.
const JRDContentType = "application/jrd+json"

// JRD is a WebFinger JSON Resource Descriptor (RFC 7033).
type JRD struct {
	Subject string    `json:"subject"`
	Aliases []string  `json:"aliases,omitempty"`
	Links   []JRDLink `json:"links"`
}

// JRDLink is one link of a JRD.
type JRDLink struct {
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
	Href string `json:"href,omitempty"`
}

// WebFingerJRD returns the WebFinger answer for the local actor l on host
// (the host of the node's public URL), served as JRDContentType: subject
// acct:NAME@HOST, the actor id as alias, and the rel=self link to the
// actor document.
func WebFingerJRD(l Local, host string) []byte {
	b, err := json.Marshal(JRD{
		Subject: "acct:" + l.Name + "@" + host,
		Aliases: []string{l.ID},
		Links:   []JRDLink{{Rel: "self", Type: ContentType, Href: l.ID}},
	})
	if err != nil {
		// A JRD holds only strings; Marshal cannot fail on it.
		panic("actor: encode JRD: " + err.Error())
	}
	return b
}

// ParseAcct splits an acct: URI (RFC 7565), "acct:NAME@HOST", into name
// and host (lower-cased). Peers choose their own names, so the name is
// only required to be non-empty and free of '@', '/', '?', '#' and
// spaces; the host must be a host[:port].
func ParseAcct(resource string) (name, host string, err error) {
	rest, ok := strings.CutPrefix(resource, "acct:")
	if !ok {
		return "", "", fmt.Errorf("resource %q is not an acct: URI", problem.Printable(resource, maxQuoted))
	}
	name, host, ok = strings.Cut(rest, "@")
	if !ok || name == "" || host == "" {
		return "", "", fmt.Errorf("resource %q: want acct:NAME@HOST", problem.Printable(resource, maxQuoted))
	}
	if strings.ContainsAny(name, "@/?# \t") {
		return "", "", fmt.Errorf("resource %q: the name contains a character not allowed in an acct: URI", problem.Printable(resource, maxQuoted))
	}
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" {
		return "", "", fmt.Errorf("resource %q: %q is not a host", problem.Printable(resource, maxQuoted), problem.Printable(host, maxQuoted))
	}
	if n, err := url.PathUnescape(name); err == nil {
		name = n
	}
	return name, strings.ToLower(host), nil
}

// ResolveWebFinger looks acct ("acct:NAME@HOST" or "NAME@HOST") up on its
// host and returns the actor id of its rel=self ActivityPub link. The
// lookup goes through the SSRF-safe client, following at most its
// redirect limit.
func (f *Fetcher) ResolveWebFinger(ctx context.Context, acct string) (string, error) {
	if !strings.HasPrefix(acct, "acct:") {
		acct = "acct:" + strings.TrimPrefix(acct, "@")
	}
	_, host, err := ParseAcct(acct)
	if err != nil {
		return "", err
	}
	scheme := "https"
	if f.plainHTTP {
		scheme = "http"
	}
	target := scheme + "://" + host + "/.well-known/webfinger?resource=" + url.QueryEscape(acct)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("webfinger %s: %w", acct, err)
	}
	req.Header.Set("Accept", JRDContentType+", application/json")
	resp, err := f.follow.Do(req)
	if err != nil {
		return "", fmt.Errorf("webfinger %s: %w", acct, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("webfinger %s: status %d", acct, resp.StatusCode)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != JRDContentType && mt != "application/json" {
		return "", fmt.Errorf("webfinger %s: Content-Type %q is not a JRD", acct, problem.Printable(resp.Header.Get("Content-Type"), maxQuoted))
	}
	body, err := readBody(resp)
	if err != nil {
		return "", err
	}
	var jrd JRD
	if err := json.Unmarshal(body, &jrd); err != nil {
		return "", fmt.Errorf("webfinger %s: decode JRD: %w", acct, err)
	}
	if !strings.EqualFold(jrd.Subject, acct) {
		return "", fmt.Errorf("webfinger %s: answer is about %q", acct, problem.Printable(jrd.Subject, maxQuoted))
	}
	for _, l := range jrd.Links {
		if l.Rel == "self" && IsActivityPubContentType(l.Type) {
			if _, err := parseFetchURL(l.Href); err != nil {
				return "", fmt.Errorf("webfinger %s: self link: %w", acct, err)
			}
			return l.Href, nil
		}
	}
	return "", fmt.Errorf("webfinger %s: no rel=self link of type %s", acct, ContentType)
}
