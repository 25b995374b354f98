package outbox

import (
	"net/url"
	"time"

	"github.com/openvultron/vultron/actor"
)

// Which signature a delivery carries.
//
// Every delivery can be signed two ways: draft-cavage with the actor's RSA
// key, which every fediverse server verifies, or RFC 9421 with its Ed25519
// key, which costs a small fraction of an RSA signature but which only
// some servers verify. A delivery is signed with Ed25519 when the
// recipient's actor document says that its server verifies it: it lists
// the FEP-844e capability CapabilityRFC9421Ed25519 in its generator's
// implements, as every Vultron node's actors do. Listing an Ed25519
// Multikey is not taken as that signal: Fedify, for one, lists Ed25519
// Multikeys for object proofs but verifies HTTP signatures only with the
// keys of publicKey.
//
// A server that answers 401 or 400 to an Ed25519 signature is asked again
// at once with draft-cavage RSA (Fedify calls this double-knocking). When
// that second request is accepted, the server's origin is remembered as
// one that does not verify Ed25519, for SignatureMemoryTTL, and gets RSA
// only until then; when it is refused too, the signature was not the
// problem and nothing is remembered. An attempt makes at most two
// requests, and the memory is an LRU of at most SignatureMemorySize
// origins, so neither grows with what peers do.

// Defaults of the signature memory.
const (
	// SignatureMemoryTTL is how long an origin that refused an Ed25519
	// signature and accepted RSA is signed to with RSA only.
	SignatureMemoryTTL = 24 * time.Hour
	// SignatureMemorySize bounds the number of origins remembered.
	SignatureMemorySize = 10000
)

// The signature specs a delivery's log line names.
const (
	SignatureCavageRSA      = "cavage-rsa"
	SignatureRFC9421Ed25519 = "rfc9421-ed25519"
)

// Ed25519KeySource gives the Ed25519 key a local actor signs RFC 9421
// deliveries with. A KeySource that also implements it lets the Deliverer
// sign with Ed25519 to peers that verify it.
type Ed25519KeySource interface {
	Ed25519Key(actorName string) (actor.Ed25519Key, bool)
}

// SignatureCapabilities tells whether a recipient's server verifies RFC
// 9421 signatures made with Ed25519, from the recipient's actor document.
// An InboxResolver that also implements it (ActorInboxes does) lets the
// Deliverer sign with Ed25519; it is asked after the recipient's inbox was
// resolved.
type SignatureCapabilities interface {
	VerifiesEd25519(actorIRI string) bool
}

// origin returns the scheme and host of an inbox URL, the unit whose
// verifier the memory describes.
func origin(inbox string) string {
	u, err := url.Parse(inbox)
	if err != nil {
		return inbox
	}
	return u.Scheme + "://" + u.Host
}

// ed25519For returns the Ed25519 key to sign dl's delivery to inbox with,
// or false when it goes with RSA: the actor has no Ed25519 key, the
// recipient does not say its server verifies it, or that server refused
// it lately.
func (d *Deliverer) ed25519For(actorName, recipient, inbox string) (actor.Ed25519Key, bool) {
	if d.edKeys == nil || d.caps == nil || !d.caps.VerifiesEd25519(recipient) {
		return actor.Ed25519Key{}, false
	}
	if d.sigMemory.has(origin(inbox), d.now()) {
		return actor.Ed25519Key{}, false
	}
	return d.edKeys.Ed25519Key(actorName)
}
