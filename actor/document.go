package actor

import (
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
)

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
	Context           []string `json:"@context"`
	Type              Type     `json:"type"`
	ID                string   `json:"id"`
	PreferredUsername string   `json:"preferredUsername"`
	Name              string   `json:"name"`
	Inbox             string   `json:"inbox"`
	Outbox            string   `json:"outbox"`
	// Followers and Following are the actor's collections; their counts
	// are public, their members shown to the node's admins only.
	Followers                 string `json:"followers"`
	Following                 string `json:"following"`
	ManuallyApprovesFollowers bool   `json:"manuallyApprovesFollowers"`
	PublicKey                 any    `json:"publicKey"` // one PublicKeyDoc, or a list while retired keys are published
}

// Document returns the ActivityStreams document of the actor, served at its
// id with content type ContentType. It carries the ActivityStreams and
// security contexts and the public key (id KeyID, owner ID, PEM) that peers
// verify signatures with, followed by the retired keys in l.Retired when
// there are any.
func (l Local) Document() ([]byte, error) {
	if l.Key == nil {
		return nil, fmt.Errorf("actor %s has no key", l.Name)
	}
	pemText, err := PublicKeyPEM(&l.Key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("actor %s: %w", l.Name, err)
	}
	doc := actorDocument{
		Context:           []string{ActivityStreamsContext, SecurityContext},
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
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode actor %s: %w", l.Name, err)
	}
	return b, nil
}

// remoteDocument is the subset of a fetched actor or key document that key
// resolution reads. A standalone key document has publicKeyPem (and owner
// or controller) at the top level; an actor has publicKey, which peers
// write as one object or as an array of objects.
type remoteDocument struct {
	ID           string          `json:"id"`
	Type         json.RawMessage `json:"type"`
	Owner        string          `json:"owner"`
	Controller   string          `json:"controller"`
	PublicKeyPem string          `json:"publicKeyPem"`
	PublicKey    json.RawMessage `json:"publicKey"`
}

// keys returns the publicKey entries of an actor document.
func (d remoteDocument) keys() ([]PublicKeyDoc, error) {
	raw := strings.TrimSpace(string(d.PublicKey))
	switch {
	case raw == "" || raw == "null":
		return nil, nil
	case strings.HasPrefix(raw, "["):
		var ks []PublicKeyDoc
		if err := json.Unmarshal(d.PublicKey, &ks); err != nil {
			return nil, fmt.Errorf("publicKey of %s: %w", d.ID, err)
		}
		return ks, nil
	default:
		var k PublicKeyDoc
		if err := json.Unmarshal(d.PublicKey, &k); err != nil {
			return nil, fmt.Errorf("publicKey of %s: %w", d.ID, err)
		}
		return []PublicKeyDoc{k}, nil
	}
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
