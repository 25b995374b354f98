// Package intel reads threat-intelligence feeds and finds the cases they
// speak of, so that the public-world events of a case (pxa: P the public
// knows, X an exploit is public, A attacks are seen) are reported when
// evidence appears, as the Vultron process notes ask.
//
// A feed is a file or an http(s) URL in one of two formats: the CISA Known
// Exploited Vulnerabilities catalog's JSON (every listed CVE is a signal
// of attacks) or the project's own simple format, which also says that an
// exploit is public or that the vulnerability is (docs/intelligence.md).
// Parse refuses a feed that is too large or malformed, naming the entry.
// A Poller fetches each source on its own schedule (an hour by default,
// conditional GETs for URLs, the modification time for files), backing
// off exponentially with jitter while a source fails, and hands over the
// feeds that changed. In a node, URLs are fetched with the SSRF-safe
// client (actor.NewSafeClient), which refuses private addresses and
// bounds what it reads.
//
// Matches finds the cases that record one of a signal's ids (a CVE id or
// an alias, Add(VulnerabilityRecord), package cases) through the index of
// ids cases keeps, so matching costs the feed's size and not the cases
// held. Offer records, in the transaction that acts on it, that a signal
// was offered for a case, so that each kind of signal is offered once per
// case; the node's automation then reports it by policy, or leaves it to
// an analyst.
package intel
