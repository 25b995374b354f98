package accounts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// softKey is a passkey held in software, as an authenticator would
// hold it: an ECDSA P-256 key and its signature counter. It answers the
// node's ceremonies as a browser passes them on, with the origin and the
// relying party id it is given.
type softKey struct {
	t       *testing.T
	id      []byte
	key     *ecdsa.PrivateKey
	counter uint32
	origin  string
	rpID    string
}

func newSoftKey(t *testing.T, origin, rpID string) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{t: t, id: id, key: k, origin: origin, rpID: rpID}
}

var b64 = base64.RawURLEncoding

// cborBytes is the CBOR head of a byte string of n bytes, and the bytes.
func cborBytes(b []byte) []byte {
	var head []byte
	switch n := len(b); {
	case n < 24:
		head = []byte{0x40 | byte(n)}
	case n < 256:
		head = []byte{0x58, byte(n)}
	default:
		head = []byte{0x59, byte(n >> 8), byte(n)}
	}
	return append(head, b...)
}

// cborText is the CBOR of a short text string.
func cborText(s string) []byte { return append([]byte{0x60 | byte(len(s))}, s...) }

// challengeOf reads the challenge of the node's ceremony options.
func challengeOf(t *testing.T, options []byte) string {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("ceremony options without a challenge: %s (%v)", options, err)
	}
	return o.PublicKey.Challenge
}

func (k *softKey) clientData(kind, challenge string) []byte {
	raw, _ := json.Marshal(map[string]any{"type": kind, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return raw
}

// authData is the authenticator data with flags (user present and
// verified, and attested credential data when cose is given).
func (k *softKey) authData(cose []byte) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	out := append([]byte{}, rp[:]...)
	flags := byte(0x01 | 0x04)
	if cose != nil {
		flags |= 0x40
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, k.counter)
	if cose != nil {
		out = append(out, make([]byte, 16)...) // AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.id)))
		out = append(out, k.id...)
		out = append(out, cose...)
	}
	return out
}

// register answers a registration's options.
func (k *softKey) register(options []byte) []byte {
	x, y := make([]byte, 32), make([]byte, 32)
	k.key.PublicKey.X.FillBytes(x)
	k.key.PublicKey.Y.FillBytes(y)
	// COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}
	cose := append([]byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21}, cborBytes(x)...)
	cose = append(append(cose, 0x22), cborBytes(y)...)
	att := append([]byte{0xa3}, cborText("fmt")...)
	att = append(att, cborText("none")...)
	att = append(att, cborText("attStmt")...)
	att = append(att, 0xa0)
	att = append(att, cborText("authData")...)
	att = append(att, cborBytes(k.authData(cose))...)
	raw, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(k.clientData("webauthn.create", challengeOf(k.t, options))),
			"attestationObject": b64.EncodeToString(att)}})
	return raw
}

// assert answers a login's options, signing with the counter as it is.
func (k *softKey) assert(options []byte, userHandle []byte) []byte {
	cd := k.clientData("webauthn.get", challengeOf(k.t, options))
	ad := k.authData(nil)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(userHandle)}})
	return raw
}

// withPasskey registers key as the passkey "soft key" in the enrollment
// session id, from m, and checks that the registration opens a full
// session; it returns that login.
func withPasskey(t *testing.T, s *Service, id string, key *softKey, m LoginMeta) Login {
	t.Helper()
	ctx := context.Background()
	options, err := s.BeginPasskeyRegistration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.FinishPasskeyRegistration(ctx, id, "soft key", key.register(options), m)
	if err != nil || done.Stage != StageFull {
		t.Fatalf("register a passkey = %+v, %v", done, err)
	}
	return done
}

// userHandleOf returns the user handle a passkey of the user name
// answers with: the user's id.
func userHandleOf(t *testing.T, s *Service, name string) []byte {
	t.Helper()
	var id []byte
	if err := s.view(context.Background(), func(t tx) error {
		u, err := t.userByName(name)
		if u != nil {
			id = []byte(u.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPasskeySignCounter: a passkey's signature counter must rise from
// one login to the next. An answer whose counter is not above the last
// one seen (a copy of the key, replaying or lagging behind the
// original) is refused as a wrong second factor, and the counter the
// node keeps does not move back.
func TestPasskeySignCounter(t *testing.T) {
	_, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	m := LoginMeta{Remote: "192.0.2.20"}
	enroll := enrolled(t, s, admin, "pat", Analyst, "pat's long password")
	key := newSoftKey(t, "http://localhost:7001", "localhost")
	key.counter = 1
	withPasskey(t, s, enroll.SessionID, key, m)
	userID := userHandleOf(t, s, "pat")
	login := func(counter uint32) (Login, error) {
		t.Helper()
		pending, err := s.PasswordLogin(ctx, "pat", "pat's long password", m)
		if err != nil || pending.Stage != StageSecondFactor {
			t.Fatalf("password step = %+v, %v", pending, err)
		}
		options, err := s.BeginPasskeyLogin(ctx, pending.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		key.counter = counter
		return s.FinishPasskeyLogin(ctx, pending.SessionID, key.assert(options, userID), m)
	}
	if l, err := login(5); err != nil || l.Stage != StageFull {
		t.Fatalf("a login with the passkey = %+v, %v", l, err)
	}
	for _, counter := range []uint32{5, 3, 0} {
		_, err := login(counter)
		wantStatus(t, "a passkey whose counter went from 5 to "+string(rune('0'+counter)), err, http.StatusUnauthorized)
		if err != nil && !strings.Contains(err.Error(), "counter") {
			t.Errorf("the refusal says %q; want it to name the counter", err)
		}
	}
	if l, err := login(6); err != nil || l.Stage != StageFull {
		t.Errorf("the passkey with its counter above the last: %+v, %v", l, err)
	}
}

// TestPasskeyCeremonyChecks: a passkey's answer counts only for the
// ceremony that asked it, on this node: an answer made for another
// origin or relying party (a phishing site's), one replayed into
// another login, and one sent again after its ceremony ended are
// refused, and none opens a session.
func TestPasskeyCeremonyChecks(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	m := LoginMeta{Remote: "192.0.2.21"}
	enroll := enrolled(t, s, admin, "pat", Analyst, "pat's long password")
	key := newSoftKey(t, "http://localhost:7001", "localhost")
	withPasskey(t, s, enroll.SessionID, key, m)
	userID := userHandleOf(t, s, "pat")
	begin := func() (string, []byte) {
		t.Helper()
		c.Advance(time.Minute)
		pending, err := s.PasswordLogin(ctx, "pat", "pat's long password", m)
		if err != nil {
			t.Fatal(err)
		}
		options, err := s.BeginPasskeyLogin(ctx, pending.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		return pending.SessionID, options
	}
	refused := func(what, id string, answer []byte, status int) {
		t.Helper()
		l, err := s.FinishPasskeyLogin(ctx, id, answer, m)
		wantStatus(t, what, err, status)
		if l.SessionID != "" {
			t.Errorf("%s opened a session", what)
		}
	}
	for _, bad := range []struct{ what, origin, rpID string }{
		{"an answer for another origin", "http://localhost.evil.example:7001", "localhost"},
		{"an answer for another relying party", "http://localhost:7001", "evil.example"},
	} {
		id, options := begin()
		key.origin, key.rpID = bad.origin, bad.rpID
		key.counter++
		refused(bad.what, id, key.assert(options, userID), http.StatusUnauthorized)
	}
	key.origin, key.rpID = "http://localhost:7001", "localhost"

	// An answer to one login's challenge, carried to another login.
	_, optionsA := begin()
	idB, _ := begin()
	key.counter++
	refused("an answer to another login's challenge", idB, key.assert(optionsA, userID), http.StatusUnauthorized)
	// The refused answer ended B's ceremony: even a right answer to it
	// needs a new one.
	refused("an answer after its ceremony was refused", idB, key.assert(optionsA, userID), http.StatusConflict)

	// A right answer logs in once; sent again, it finds no ceremony.
	id, options := begin()
	key.counter++
	answer := key.assert(options, userID)
	if l, err := s.FinishPasskeyLogin(ctx, id, answer, m); err != nil || l.Stage != StageFull {
		t.Fatalf("the right answer: %+v, %v", l, err)
	}
	refused("a used answer, in its ended login", id, answer, http.StatusUnauthorized)
	id2, _ := begin()
	refused("a used answer, in a new login", id2, answer, http.StatusUnauthorized)
}
