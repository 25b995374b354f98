package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Second factors: TOTP codes (RFC 6238) from an authenticator app,
// passkeys (WebAuthn, passkeys.go), and single-use recovery codes for a
// lost device.
//
// TOTP uses github.com/pquerna/otp for the secret, the otpauth:// URL and
// each step's code, with the parameters every authenticator app reads
// (SHA-1, 6 digits, 30 s). The check is written here, over the library's
// code generation, because the library's Validate does not say which step
// matched: a code is accepted in the current step or one step before or
// after (±30 s of clock drift), and only in a step after the last one the
// user's codes were accepted in, so that a code seen over a shoulder or in
// a log cannot be used again, even within its window.

// TOTPFactor is a user's authenticator app.
type TOTPFactor struct {
	Secret string    `json:"secret"` // base32, as the app was given it
	Added  time.Time `json:"added"`
	// LastStep is the time step (Unix time / 30 s) of the last code
	// accepted; a code of that step or an earlier one is refused.
	LastStep int64 `json:"lastStep"`
}

const (
	totpPeriod = 30
	totpSkew   = 1
	// recoveryCodes is how many recovery codes a user is given at once.
	recoveryCodes = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// newTOTPKey returns a new TOTP secret and its otpauth:// URL for the
// user's authenticator app.
func (s *Service) newTOTPKey(account string) (*otp.Key, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuer, AccountName: account, Period: totpPeriod, SecretSize: 20,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader})
	if err != nil {
		return nil, fmt.Errorf("accounts: new TOTP secret: %w", err)
	}
	return key, nil
}

// totpStep checks code against secret at now and returns the step it is
// the code of, if it is one of the accepted window's steps after
// lastStep; replay is true when the code is right but its step was used.
func totpStep(secret, code string, now time.Time, lastStep int64) (step int64, ok, replay bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0, false, false
	}
	cur := now.Unix() / totpPeriod
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			if s <= lastStep {
				return s, false, true
			}
			return s, true, false
		}
	}
	return 0, false, false
}

// newRecoveryCodes returns recoveryCodes new codes, as the person is
// shown them (XXXX-XXXX-XXXX-XXXX, 80 random bits each), and their hashes
// as stored. 80 bits leave nothing to guess, so a plain SHA-256 is
// enough; the throttle bounds the tries anyway.
func newRecoveryCodes() (codes, hashes []string) {
	for range recoveryCodes {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("accounts: crypto/rand: " + err.Error())
		}
		raw := base32.StdEncoding.EncodeToString(b[:]) // 16 characters
		code := raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		codes = append(codes, code)
		hashes = append(hashes, sumHex(normRecovery(code)))
	}
	return codes, hashes
}

// normRecovery reads a recovery code as typed: any case, with or without
// dashes and spaces.
func normRecovery(code string) string {
	return strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(strings.TrimSpace(code)))
}

// useRecovery removes code from hashes and reports whether it was there.
func useRecovery(hashes []string, code string) ([]string, bool) {
	h := sumHex(normRecovery(code))
	for i, want := range hashes {
		if subtle.ConstantTimeCompare([]byte(want), []byte(h)) == 1 {
			return append(hashes[:i:i], hashes[i+1:]...), true
		}
	}
	return hashes, false
}
