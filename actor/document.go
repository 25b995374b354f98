package actor

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"
)

// ContentType is the media type of ActivityPub documents and activities.
const ContentType = "application/activity+json"

// LDContentType is the JSON-LD media type with the ActivityStreams profile,
// which ActivityPub treats as equivalent to ContentType.
const LDContentType = `application/ld+json; profile="https://www.w3.org/ns/activitystreams"`

// The JSON-LD contexts of actor documents.
const (
	ActivityStreamsContext = "https://www.w3.org/ns/activitystreams"
	SecurityContext        = "https://w3id.org/security/v1"
	// DIDContext defines assertionMethod for the actor, and
	// MultikeyContext Multikey, controller, publicKeyMultibase and expires
	// (FEP-521a); Fedify publishes the same pair, and its parser finds an
	// actor's assertionMethod only through the first.
	DIDContext      = "https://www.w3.org/ns/did/v1"
	MultikeyContext = "https://w3id.org/security/multikey/v1"
)

// implementsTerm defines FEP-844e's implements in the document itself, as
// other implementations do: a peer that reads JSON-LD needs no fetch of a
// context document the common loaders do not carry for it.
var implementsTerm = map[string]any{
	"implements": map[string]string{"@id": "https://w3id.org/fep/844e/implements", "@type": "@id", "@container": "@list"},
}

// IsActivityPubContentType reports whether a Content-Type header names an
// ActivityPub document: application/activity+json, or application/ld+json
// with the ActivityStreams profile.
func IsActivityPubContentType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case ContentType:
		return true
	case "application/ld+json":
		for _, p := range strings.Fields(params["profile"]) {
			if p == ActivityStreamsContext {
				return true
			}
		}
	}
	return false
}

// PublicKeyDoc is the publicKey object of an actor document, or a
// standalone key document.
type PublicKeyDoc struct {
	ID           string `json:"id"`
	Owner        string `json:"owner"`
	PublicKeyPem string `json:"publicKeyPem"`
	// Expires is when a retired key stops being accepted (RFC 3339), set
	// on the keys an actor published before its key was rotated.
	Expires string `json:"expires,omitempty"`
}

// actorDocument is the JSON form of a local actor.
type actorDocument struct {
	Context           []any  `json:"@context"`
	Type              Type   `json:"type"`
	ID                string `json:"id"`
	PreferredUsername string `json:"preferredUsername"`
	Name              string `json:"name"`
	Inbox             string `json:"inbox"`
	Outbox            string `json:"outbox"`
	// Followers and Following are the actor's collections; their counts
	// are public, their members shown to the node's admins only.
	Followers                 string        `json:"followers"`
	Following                 string        `json:"following"`
	ManuallyApprovesFollowers bool          `json:"manuallyApprovesFollowers"`
	PublicKey                 any           `json:"publicKey"` // one PublicKeyDoc, or a list while retired keys are published
	AssertionMethod           []MultikeyDoc `json:"assertionMethod,omitempty"`
	Generator                 *generator    `json:"generator,omitempty"`
}

// generator is the FEP-844e Application an actor document names as its
// generator, which lists what the node implements.
type generator struct {
	Type       string       `json:"type"`
	Implements []capability `json:"implements"`
}

// capability is one FEP-844e capability, a Link.
type capability struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

// nodeCapabilities are the capabilities every local actor's document
// lists: peers that read them sign to this node's actors with RFC 9421 and
// Ed25519, as this node does to theirs (see VerifiesEd25519).
var nodeCapabilities = &generator{Type: "Application", Implements: []capability{
	{Href: CapabilityRFC9421, Name: "RFC-9421: HTTP Message Signatures"},
	{Href: CapabilityRFC9421Ed25519, Name: "RFC-9421 signatures using the Ed25519 algorithm"},
}}

// Document returns the ActivityStreams document of the actor, served at its
// id with content type ContentType. It carries the ActivityStreams and
// security contexts and the public key (id KeyID, owner ID, PEM) that peers
// verify signatures with, followed by the retired keys in l.Retired when
// there are any. The actor's Ed25519 key is listed as a FEP-521a Multikey
// (id EdKeyID, controller ID) in assertionMethod, followed by the Ed25519
// keys of the retired RSA keys, and its generator lists the FEP-844e
// capabilities that tell peers this node verifies RFC 9421 signatures made
// with Ed25519.
func (l Local) Document() ([]byte, error) {
	if l.Key == nil {
		return nil, fmt.Errorf("actor %s has no key", l.Name)
	}
	pemText, err := PublicKeyPEM(&l.Key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("actor %s: %w", l.Name, err)
	}
	doc := actorDocument{
		Context:           []any{ActivityStreamsContext, SecurityContext, DIDContext, MultikeyContext, implementsTerm},
		Type:              l.Type,
		ID:                l.ID,
		PreferredUsername: l.Name,
		Name:              l.Name,
		Inbox:             l.Inbox,
		Outbox:            l.Outbox,
		Followers:         l.ID + "/followers",
		Following:         l.ID + "/following",
		// Mastodon's "locked account": Follows wait for an admin.
		ManuallyApprovesFollowers: !l.OpenFollowers,
		PublicKey:                 PublicKeyDoc{ID: l.KeyID, Owner: l.ID, PublicKeyPem: pemText},
	}
	if len(l.Retired) > 0 {
		// The current key first, then each retired key still inside its
		// overlap window, so a peer resolving an old key id finds it.
		keys := []PublicKeyDoc{{ID: l.KeyID, Owner: l.ID, PublicKeyPem: pemText}}
		for _, k := range l.Retired {
			keys = append(keys, PublicKeyDoc{ID: l.ID + "#" + k.Fragment, Owner: l.ID, PublicKeyPem: k.PublicKeyPEM,
				Expires: k.Until.UTC().Format(time.RFC3339)})
		}
		doc.PublicKey = keys
	}
	if ed, ok := l.Ed25519(); ok {
		doc.AssertionMethod = append(doc.AssertionMethod, MultikeyDoc{ID: ed.KeyID, Type: MultikeyType, Controller: l.ID,
			PublicKeyMultibase: Ed25519Multibase(ed.Key.Public().(ed25519.PublicKey))})
		for _, k := range l.Retired {
			if m, ok := l.retiredEd25519(k); ok {
				doc.AssertionMethod = append(doc.AssertionMethod, m)
			}
		}
		doc.Generator = nodeCapabilities
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode actor %s: %w", l.Name, err)
	}
	return b, nil
}

// remoteDocument is the subset of a fetched actor or key document that key
// resolution reads. A standalone key document has publicKeyPem (and owner
// or controller) at the top level, a standalone Multikey publicKeyMultibase
// and controller; an actor has publicKey, which peers write as one object
// or as an array of objects, and assertionMethod (FEP-521a Multikeys), one
// object or an array.
type remoteDocument struct {
	ID                 string          `json:"id"`
	Type               json.RawMessage `json:"type"`
	Owner              string          `json:"owner"`
	Controller         string          `json:"controller"`
	PublicKeyPem       string          `json:"publicKeyPem"`
	PublicKeyMultibase string          `json:"publicKeyMultibase"`
	Expires            string          `json:"expires"`
	PublicKey          json.RawMessage `json:"publicKey"`
	AssertionMethod    json.RawMessage `json:"assertionMethod"`
}

// objects decodes a property that holds one T or an array of them. Array
// members that are not objects (references by id) are skipped: a key is
// only taken from a document that embeds it.
func objects[T any](raw json.RawMessage, what, id string) ([]T, error) {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "" || s == "null":
		return nil, nil
	case strings.HasPrefix(s, "["):
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", what, id, err)
		}
		out := make([]T, 0, len(items))
		for _, it := range items {
			if !strings.HasPrefix(strings.TrimSpace(string(it)), "{") {
				continue
			}
			var v T
			if err := json.Unmarshal(it, &v); err != nil {
				return nil, fmt.Errorf("%s of %s: %w", what, id, err)
			}
			out = append(out, v)
		}
		return out, nil
	case strings.HasPrefix(s, "{"):
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", what, id, err)
		}
		return []T{v}, nil
	}
	return nil, nil
}

// keys returns the publicKey entries of an actor document.
func (d remoteDocument) keys() ([]PublicKeyDoc, error) {
	return objects[PublicKeyDoc](d.PublicKey, "publicKey", d.ID)
}

// multikeys returns the assertionMethod entries of an actor document.
func (d remoteDocument) multikeys() ([]MultikeyDoc, error) {
	return objects[MultikeyDoc](d.AssertionMethod, "assertionMethod", d.ID)
}

// findKey returns the publicKey entry with id keyID.
func (d remoteDocument) findKey(keyID string) (PublicKeyDoc, bool, error) {
	ks, err := d.keys()
	if err != nil {
		return PublicKeyDoc{}, false, err
	}
	for _, k := range ks {
		if k.ID == keyID {
			return k, true, nil
		}
	}
	return PublicKeyDoc{}, false, nil
}

// findMultikey returns the assertionMethod entry with id keyID.
func (d remoteDocument) findMultikey(keyID string) (MultikeyDoc, bool, error) {
	ms, err := d.multikeys()
	if err != nil {
		return MultikeyDoc{}, false, err
	}
	for _, m := range ms {
		if m.ID == keyID {
			return m, true, nil
		}
	}
	return MultikeyDoc{}, false, nil
}

// isMultikey reports whether the type of a standalone key document is
// Multikey.
func (d remoteDocument) isMultikey() bool {
	var t string
	return json.Unmarshal(d.Type, &t) == nil && t == MultikeyType
}
