package outbox

import (
	"net/url"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

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

// signatureMemory remembers, per origin (scheme and host of an inbox), that
// its server refused an Ed25519 signature and accepted RSA, until a
// deadline. It is safe for concurrent use.
type signatureMemory struct {
	mu      sync.Mutex // orders a check of an entry's deadline and its removal
	refused *lru.Cache[string, time.Time]
	ttl     time.Duration
}

func newSignatureMemory(size int, ttl time.Duration) *signatureMemory {
	// size is a positive constant, which is all lru.New checks.
	c, _ := lru.New[string, time.Time](size)
	return &signatureMemory{refused: c, ttl: ttl}
}

// rsaOnly reports whether origin refused Ed25519 less than the TTL ago.
func (m *signatureMemory) rsaOnly(origin string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.refused.Get(origin)
	if !ok {
		return false
	}
	if !now.Before(until) {
		m.refused.Remove(origin)
		return false
	}
	return true
}

// refuse remembers that origin refused Ed25519 at now.
func (m *signatureMemory) refuse(origin string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused.Add(origin, now.Add(m.ttl))
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
	if d.sigMemory.rsaOnly(origin(inbox), d.now()) {
		return actor.Ed25519Key{}, false
	}
	return d.edKeys.Ed25519Key(actorName)
}
