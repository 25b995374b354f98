package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with argon2id (RFC 9106) from golang.org/x/crypto,
// stored in the PHC string format
//
//	$argon2id$v=19$m=MEMORY_KIB,t=TIME,p=THREADS$SALT$HASH
//
// (salt and hash in unpadded standard base64), so that raising the
// parameters later leaves older hashes readable; a hash made with lower
// parameters than the node's is replaced at the next good login.

// Argon2Params are argon2id's cost parameters.
type Argon2Params struct {
	// Memory in KiB, Time in passes, Threads in lanes.
	Memory  uint32
	Time    uint32
	Threads uint8
}

// DefaultArgon2 is the cost of a password hash: 46 MiB, one pass, one
// lane, the first of OWASP's argon2id configurations (about 60 ms on one
// core of the reference machine, see BenchmarkHashPassword). Memory
// dominates the cost of a guess on a GPU, time is kept to one pass so
// that a login stays quick; the parallel checks are bounded (maxHashing),
// which bounds the memory logins may take at once.
var DefaultArgon2 = Argon2Params{Memory: 46 * 1024, Time: 1, Threads: 1}

const (
	saltSize = 16
	hashSize = 32
	// MinPasswordLength and MaxPasswordLength bound a new password, in
	// characters (NIST SP 800-63B: at least 8, allow at least 64).
	MinPasswordLength = 12
	MaxPasswordLength = 256
	// maxHashing bounds the argon2id computations that run at once.
	maxHashing = 2
)

// checkNewPassword refuses a password too short or too long.
func checkNewPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return errors.New("the password is not valid UTF-8")
	case n < MinPasswordLength:
		return fmt.Errorf("the password is too short: it needs at least %d characters", MinPasswordLength)
	case n > MaxPasswordLength:
		return fmt.Errorf("the password is too long: at most %d characters are taken", MaxPasswordLength)
	}
	return nil
}

// hasher computes argon2id hashes, at most maxHashing at once.
type hasher struct {
	params Argon2Params
	slots  chan struct{}
	// dummy is a PHC string of the hasher's parameters with a random salt
	// and a random hash, checked for a name that has no user so that such
	// a login costs the same as a real one and matches nothing. It is not
	// computed: an argon2id hash at start would take its memory (46 MiB)
	// from the node for good.
	dummy string
	// computed counts the argon2id computations, so that a test can see
	// that a login of an unknown name does the same work as a real one.
	computed atomic.Uint64
}

func newHasher(p Argon2Params) (*hasher, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return nil, errors.New("accounts: argon2id parameters must not be zero")
	}
	h := &hasher{params: p, slots: make(chan struct{}, maxHashing)}
	salt, sum := make([]byte, saltSize), make([]byte, hashSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("accounts: salt: %w", err)
	}
	if _, err := rand.Read(sum); err != nil {
		return nil, fmt.Errorf("accounts: dummy hash: %w", err)
	}
	h.dummy = phc(p, salt, sum)
	return h, nil
}

// acquire waits for a free hashing slot.
func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("accounts: wait to hash a password: %w", ctx.Err())
	}
}

func (h *hasher) release() { <-h.slots }

// hash returns the PHC string of pw under a new random salt.
func (h *hasher) hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("accounts: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	h.computed.Add(1)
	sum := argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, hashSize)
	return phc(h.params, salt, sum), nil
}

// phc encodes an argon2id hash as a PHC string.
func phc(p Argon2Params, salt, sum []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// verify reports whether pw matches the PHC string encoded, and whether
// encoded was made with weaker parameters than the hasher's (so it should
// be replaced). An encoded of "" is checked against the dummy hash, so
// that it costs the same and matches nothing.
func (h *hasher) verify(ctx context.Context, encoded, pw string) (ok, weaker bool, err error) {
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	h.computed.Add(1)
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	match := subtle.ConstantTimeCompare(got, want) == 1 && known
	weaker = p.Memory < h.params.Memory || p.Time < h.params.Time
	return match, weaker, nil
}

// parsePHC reads an argon2id PHC string.
func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Argon2Params{}, nil, nil, errors.New("accounts: stored password hash is not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Argon2Params{}, nil, nil, fmt.Errorf("accounts: stored password hash has argon2 version %q, want %d", parts[2], argon2.Version)
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return Argon2Params{}, nil, nil, fmt.Errorf("accounts: stored password hash has malformed parameters %q", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return Argon2Params{}, nil, nil, errors.New("accounts: stored password hash has a malformed salt")
	}
	sum, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(sum) < 16 {
		return Argon2Params{}, nil, nil, errors.New("accounts: stored password hash has a malformed hash")
	}
	return p, salt, sum, nil
}

// RandomID returns 256 random bits in unpadded base64url: a value no one
// guesses, for a cookie or a form's CSRF token.
func RandomID() string { return randomString(32) }

// randomString returns n random bytes in unpadded base64url.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on the platforms Go supports.
		panic("accounts: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
