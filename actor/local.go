package actor

import (
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net/url"
	"strings"
)

// Type is the ActivityStreams type of a local actor.
type Type string

// The actor types a node may host.
const (
	Person       Type = "Person"
	Organization Type = "Organization"
	Service      Type = "Service"
	Application  Type = "Application"
	Group        Type = "Group"
)

// ParseType returns the actor type named s, which must be one of the
// ActivityStreams actor types, spelled as in ActivityStreams.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case Person, Organization, Service, Application, Group:
		return t, nil
	}
	return "", fmt.Errorf("actor type %q is not one of Person, Organization, Service, Application, Group", s)
}

// ParseActorSpec parses the value of a --actor flag, "NAME:TYPE" such as
// "vendor:Organization".
func ParseActorSpec(spec string) (name string, typ Type, err error) {
	name, t, ok := strings.Cut(spec, ":")
	if !ok {
		return "", "", fmt.Errorf("actor %q: want NAME:TYPE, for example vendor:Organization", spec)
	}
	if err := ValidateName(name); err != nil {
		return "", "", fmt.Errorf("actor %q: %w", spec, err)
	}
	typ, err = ParseType(t)
	if err != nil {
		return "", "", fmt.Errorf("actor %q: %w", spec, err)
	}
	return name, typ, nil
}

// Local is an actor hosted by this node, with the private key that signs
// what it sends. Its String and GoString methods print only its name and
// id, and Key is left out of JSON, so a Local can be logged safely.
type Local struct {
	Name   string
	Type   Type
	ID     string          // {public-url}/actors/NAME
	Inbox  string          // ID + "/inbox"
	Outbox string          // ID + "/outbox"
	KeyID  string          // ID + "#main-key", or ID + "#" + the fragment of a rotated key
	Key    *rsa.PrivateKey `json:"-"`
	// EdKeyID and EdKey are the actor's Ed25519 key (derived from Key, see
	// DeriveEd25519Key), published as a Multikey in assertionMethod:
	// ID + "#ed25519-key", or the fragment Ed25519Fragment gives for a
	// rotated RSA key.
	EdKeyID string
	EdKey   ed25519.PrivateKey `json:"-"`
	// Retired are the public keys the actor signed with before its key
	// was rotated, still inside their overlap window; its document lists
	// them after KeyID.
	Retired []RetiredKey
	// OpenFollowers is set for an actor that accepts every Follow at once
	// (a node's public advisory actor); its document then says
	// manuallyApprovesFollowers false. Every other actor asks an admin.
	OpenFollowers bool
}

// NewLocal builds the local actor name of type typ under the node's public
// base URL (scheme and host, optionally a path prefix; no query or
// fragment).
func NewLocal(publicURL, name string, typ Type, key *rsa.PrivateKey) (Local, error) {
	base, err := ParsePublicURL(publicURL)
	if err != nil {
		return Local{}, err
	}
	if err := ValidateName(name); err != nil {
		return Local{}, err
	}
	if _, err := ParseType(string(typ)); err != nil {
		return Local{}, err
	}
	if key == nil {
		return Local{}, fmt.Errorf("actor %s: no private key", name)
	}
	if key.N.BitLen() < MinRSABits {
		return Local{}, fmt.Errorf("actor %s: %d-bit RSA key; at least %d bits are required", name, key.N.BitLen(), MinRSABits)
	}
	edKey, err := DeriveEd25519Key(key)
	if err != nil {
		return Local{}, fmt.Errorf("actor %s: %w", name, err)
	}
	id := ID(base, name)
	return Local{
		Name:    name,
		Type:    typ,
		ID:      id,
		Inbox:   id + "/inbox",
		Outbox:  id + "/outbox",
		KeyID:   id + "#" + MainKeyFragment,
		Key:     key,
		EdKeyID: id + "#" + Ed25519MainFragment,
		EdKey:   edKey,
	}, nil
}

// ParsePublicURL checks the node's public base URL and returns it without
// a trailing slash.
func ParsePublicURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("public URL %q: %w", s, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("public URL %q: scheme must be https (or http for local set-ups)", s)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("public URL %q: want scheme://host[:port][/path] without user, query or fragment", s)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// String returns the actor's name and id; it never includes the key.
func (l Local) String() string { return l.Name + " <" + l.ID + ">" }

// GoString is String, so %#v does not print the private key either.
func (l Local) GoString() string { return "actor.Local{" + l.String() + "}" }

// ID returns the id of the local actor name of the node whose public URL
// is base.
func ID(base, name string) string { return base + "/actors/" + name }
