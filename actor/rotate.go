package actor

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MainKeyFragment is the fragment of a local actor's key id before its
// first rotation: ID#main-key.
const MainKeyFragment = "main-key"

// RetiredKey is a public key a local actor signed with before a rotation.
// It stays published in the actor's document, and peers keep accepting it,
// until Until.
type RetiredKey struct {
	Fragment     string    `json:"fragment"`
	PublicKeyPEM string    `json:"publicKeyPem"`
	Until        time.Time `json:"until"`
}

// KeyRing is what a local actor's key directory holds about its keys: the
// current private key, which signs everything sent from now on, the
// fragment of its key id, and the keys it replaced. An actor that was never
// rotated has the key of NAME.pem under MainKeyFragment and no retired
// keys.
type KeyRing struct {
	Current  *rsa.PrivateKey
	Fragment string
	Retired  []RetiredKey
}

// ringFile is the JSON file NAME.keys.json that records a rotated actor's
// keys beside NAME.pem. Fingerprint is the SHA-256 of the current public
// key (PKIX DER), which ties the record to the key file it describes.
type ringFile struct {
	Fragment    string       `json:"fragment"`
	Fingerprint string       `json:"fingerprint"`
	Retired     []RetiredKey `json:"retired"`
}

// Published returns the retired keys still inside their overlap window at
// now: the ones the actor document lists and peers accept beside the
// current key.
func (r KeyRing) Published(now time.Time) []RetiredKey {
	var out []RetiredKey
	for _, k := range r.Retired {
		if now.Before(k.Until) {
			out = append(out, k)
		}
	}
	return out
}

func fingerprint(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// LoadKeyRing returns the key ring of the actor name in dir, creating the
// actor's first key as LoadOrCreateKey does. It finishes a rotation a crash
// interrupted after the new key was recorded, and discards the new key of
// one interrupted before that.
func LoadKeyRing(dir, name string) (KeyRing, error) {
	if err := ValidateName(name); err != nil {
		return KeyRing{}, err
	}
	ringPath := filepath.Join(dir, name+".keys.json")
	nextPath := filepath.Join(dir, name+".next.pem")
	var rf ringFile
	data, err := os.ReadFile(ringPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		_ = os.Remove(nextPath) // a rotation that recorded nothing
		key, _, err := LoadOrCreateKey(dir, name)
		if err != nil {
			return KeyRing{}, err
		}
		return KeyRing{Current: key, Fragment: MainKeyFragment}, nil
	case err != nil:
		return KeyRing{}, fmt.Errorf("read key record %s: %w", ringPath, err)
	}
	if err := json.Unmarshal(data, &rf); err != nil || rf.Fragment == "" {
		return KeyRing{}, fmt.Errorf("key record %s is not valid JSON with a key fragment", ringPath)
	}
	if next, err := loadKey(nextPath); err == nil {
		fp, err := fingerprint(&next.PublicKey)
		if err != nil {
			return KeyRing{}, err
		}
		if fp == rf.Fingerprint {
			// Recorded but not yet installed: install it.
			if err := os.Rename(nextPath, filepath.Join(dir, name+".pem")); err != nil {
				return KeyRing{}, fmt.Errorf("install rotated key of actor %s: %w", name, err)
			}
		} else if err := os.Remove(nextPath); err != nil {
			return KeyRing{}, fmt.Errorf("discard unrecorded key of actor %s: %w", name, err)
		}
	}
	key, err := loadKey(filepath.Join(dir, name+".pem"))
	if err != nil {
		return KeyRing{}, err
	}
	fp, err := fingerprint(&key.PublicKey)
	if err != nil {
		return KeyRing{}, err
	}
	if fp != rf.Fingerprint {
		return KeyRing{}, fmt.Errorf("key file of actor %s does not hold the key its record %s names", name, ringPath)
	}
	return KeyRing{Current: key, Fragment: rf.Fragment, Retired: rf.Retired}, nil
}

// RotateKey replaces the current key of the actor name in dir with a new
// RSA key of KeyBits bits and returns the new ring. The old key is retired:
// published and accepted until now+overlap. Retired keys whose window ended
// are dropped. The new key file has mode 0600; a crash at any point leaves
// either the old ring or the new one (see LoadKeyRing).
func RotateKey(dir, name string, now time.Time, overlap time.Duration) (KeyRing, error) {
	if overlap < 0 {
		return KeyRing{}, fmt.Errorf("key overlap %s is negative", overlap)
	}
	old, err := LoadKeyRing(dir, name)
	if err != nil {
		return KeyRing{}, err
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return KeyRing{}, fmt.Errorf("generate RSA key for actor %s: %w", name, err)
	}
	oldPEM, err := PublicKeyPEM(&old.Current.PublicKey)
	if err != nil {
		return KeyRing{}, err
	}
	fragment := "key-" + strconv.FormatInt(now.UnixNano(), 36)
	if fragment == old.Fragment {
		return KeyRing{}, fmt.Errorf("actor %s was rotated at this very instant; try again", name)
	}
	ring := KeyRing{Current: key, Fragment: fragment,
		Retired: append(old.Published(now), RetiredKey{Fragment: old.Fragment, PublicKeyPEM: oldPEM, Until: now.Add(overlap).UTC()})}
	fp, err := fingerprint(&key.PublicKey)
	if err != nil {
		return KeyRing{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyRing{}, fmt.Errorf("encode key for actor %s: %w", name, err)
	}
	// 1. the new key beside the old one; 2. the record naming it; 3. the new
	// key in place of the old one.
	nextPath := filepath.Join(dir, name+".next.pem")
	_ = os.Remove(nextPath)
	if _, err := writeNewFile(dir, nextPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return KeyRing{}, err
	}
	record, err := json.MarshalIndent(ringFile{Fragment: fragment, Fingerprint: fp, Retired: ring.Retired}, "", "  ")
	if err != nil {
		return KeyRing{}, fmt.Errorf("encode key record of actor %s: %w", name, err)
	}
	ringPath := filepath.Join(dir, name+".keys.json")
	tmpRing := ringPath + ".tmp"
	_ = os.Remove(tmpRing)
	if _, err := writeNewFile(dir, tmpRing, record); err != nil {
		return KeyRing{}, err
	}
	if err := os.Rename(tmpRing, ringPath); err != nil {
		return KeyRing{}, fmt.Errorf("record rotated key of actor %s: %w", name, err)
	}
	if err := os.Rename(nextPath, filepath.Join(dir, name+".pem")); err != nil {
		return KeyRing{}, fmt.Errorf("install rotated key of actor %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the renames durable
		d.Close()
	}
	return ring, nil
}

// WithRing returns l signing with the ring's current key under its key id
// and publishing the ring's retired keys that are still inside their
// overlap window at now.
func (l Local) WithRing(ring KeyRing, now time.Time) Local {
	l.Key = ring.Current
	l.KeyID = l.ID + "#" + ring.Fragment
	l.Retired = ring.Published(now)
	return l
}
