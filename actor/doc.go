// Package actor owns the identities of a node and the proofs of who sent
// what between nodes.
//
// It holds:
//
//   - the RSA key pair of each local actor, created once and kept in a
//     0600 PEM file (keys.go), and its rotation: the new key and the new
//     ring's record are prepared beside the current ones and installed
//     only after the caller committed the new public key in its store;
//     LoadKeyRing installs or discards a prepared rotation to match the
//     key the store committed, so a crash leaves the old ring or the new
//     one (rotate.go);
//   - each local actor's Ed25519 key, derived from its RSA key with HKDF so
//     that it is kept, shared and rotated with it (ed25519.go), published
//     as a FEP-521a Multikey in the actor document's assertionMethod, with
//     the FEP-844e capabilities that tell peers the node verifies RFC 9421
//     Ed25519 signatures (publicKey stays the RSA key that Mastodon-era
//     peers read); Multikeys are base58btc through mr-tron/base58, the
//     two-byte multicodec prefix is written here;
//   - local actors and their ActivityStreams documents, and the WebFinger
//     documents that point at them (local.go, document.go, webfinger.go);
//   - HTTP signatures: signing outgoing requests (draft-cavage, RSA-SHA256;
//     RFC 9421 with Ed25519, written here over the same signature base the
//     verifier builds) and verifying incoming ones (draft-cavage and RFC
//     9421), including the
//     Digest/Content-Digest over the raw body, the Date window and the
//     signed Host (sign.go, verify*.go, digest.go). A draft-cavage
//     Signature header is parsed once, and that parse feeds both the
//     policy checks and the signing string that is verified; verification
//     therefore uses the standard library's RSA and Ed25519 rather than
//     go-fed/httpsig, whose verifier re-parses the header by its own rules
//     (splitting on commas inside quoted values, case-sensitive names) and
//     could verify other covered headers than the policy checked.
//     go-fed/httpsig signs outgoing requests;
//   - fetching and caching remote keys, and binding a key to the actor
//     and the id of the activity it signed (keyfetch.go, binding.go). A
//     key is the signing actor's only if its document lists it: in
//     publicKey with the actor as owner, or in assertionMethod as an
//     Ed25519 Multikey with the actor as controller; a key id listed in
//     both is refused, and the algorithm is always the key's (a signature
//     cannot choose RSA for an Ed25519 key or the reverse);
//   - an HTTP client for dereferencing remote documents that refuses
//     private, loopback and other non-global addresses at dial time, limits
//     redirects and bounds response bodies (ssrf.go, fetch.go).
//
// The package stores nothing itself: remote keys go through the KeyCache
// interface, which the store satisfies through a thin adapter. Refusals of
// a signature are *VerifyError values whose Reason names exactly what was
// wrong; callers answer them with HTTP 401.
//
// Private keys are never logged or formatted: Local prints only its name and
// id, and its Key field is left out of JSON.
package actor
