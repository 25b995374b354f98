package actor

import (
	"crypto/ed25519"
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
	"strings"
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
	// Ed25519Multibase is the public half of the Ed25519 key that was
	// derived from the retired RSA key (published as a Multikey under
	// Ed25519Fragment(Fragment)); empty for a key retired before actors
	// had Ed25519 keys.
	Ed25519Multibase string `json:"ed25519Multibase,omitempty"`
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

// rotationFiles are the files of an actor's key ring in dir: the current
// private key, the record of the ring, and the new key and record of a
// rotation prepared but not yet installed.
type rotationFiles struct {
	key, ring, nextKey, nextRing string
}

func filesOf(dir, name string) rotationFiles {
	return rotationFiles{
		key:      filepath.Join(dir, name+".pem"),
		ring:     filepath.Join(dir, name+".keys.json"),
		nextKey:  filepath.Join(dir, name+".next.pem"),
		nextRing: filepath.Join(dir, name+".next.json"),
	}
}

// KeyFileNames returns the names, inside a key directory, of the files of
// actor name's key ring (its key and ring record) and of a prepared
// rotation of it, for a node that copies key directories between
// processes.
func KeyFileNames(name string) (ring, prepared []string) {
	f := filesOf("", name)
	return []string{f.key, f.ring}, []string{f.nextKey, f.nextRing}
}

// readRingFile reads a ring record.
func readRingFile(path string) (ringFile, error) {
	var rf ringFile
	data, err := os.ReadFile(path)
	if err != nil {
		return rf, err
	}
	if err := json.Unmarshal(data, &rf); err != nil || rf.Fragment == "" || rf.Fingerprint == "" {
		return rf, fmt.Errorf("key record %s is not valid JSON with a key fragment and fingerprint", path)
	}
	return rf, nil
}

// LoadKeyRing returns the key ring of the actor name in dir, creating the
// actor's first key as LoadOrCreateKey does.
//
// committed is the public key (PEM) that the node's store names as the
// actor's current key, or "" when the store names none. A key rotation is
// committed by the store's transaction, not by the files (see
// PrepareRotation), so a prepared rotation whose new key is the committed
// one is installed here, and one whose new key is not is discarded: after
// a crash at any point the ring is the old one or the new one, whichever
// the store committed.
func LoadKeyRing(dir, name, committed string) (KeyRing, error) {
	if err := ValidateName(name); err != nil {
		return KeyRing{}, err
	}
	f := filesOf(dir, name)
	if err := settleRotation(f, name, committed); err != nil {
		return KeyRing{}, err
	}
	rf, err := readRingFile(f.ring)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		key, _, err := LoadOrCreateKey(dir, name)
		if err != nil {
			return KeyRing{}, err
		}
		return KeyRing{Current: key, Fragment: MainKeyFragment}, nil
	case err != nil:
		return KeyRing{}, fmt.Errorf("read key record of actor %s: %w", name, err)
	}
	key, err := loadKey(f.key)
	if err != nil {
		return KeyRing{}, err
	}
	fp, err := fingerprint(&key.PublicKey)
	if err != nil {
		return KeyRing{}, err
	}
	if fp != rf.Fingerprint {
		return KeyRing{}, fmt.Errorf("key file of actor %s does not hold the key its record %s names", name, f.ring)
	}
	return KeyRing{Current: key, Fragment: rf.Fragment, Retired: rf.Retired}, nil
}

// settleRotation installs or discards the files of a prepared rotation, as
// described on LoadKeyRing. A new key is installed when it is the
// committed one, or when the ring record already names it (an install
// that stopped between its two renames).
func settleRotation(f rotationFiles, name, committed string) error {
	next, err := loadKey(f.nextKey)
	if errors.Is(err, fs.ErrNotExist) {
		// At most a record written while the rotation was being prepared.
		if err := os.Remove(f.nextRing); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("discard the record of an unfinished rotation of actor %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("key of a prepared rotation of actor %s: %w", name, err)
	}
	fp, err := fingerprint(&next.PublicKey)
	if err != nil {
		return err
	}
	nextPEM, err := PublicKeyPEM(&next.PublicKey)
	if err != nil {
		return err
	}
	rf, rerr := readRingFile(f.ring)
	recorded := rerr == nil && rf.Fingerprint == fp
	if !recorded && (committed == "" || strings.TrimSpace(committed) != strings.TrimSpace(nextPEM)) {
		for _, p := range []string{f.nextRing, f.nextKey} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("discard the uncommitted rotation of actor %s: %w", name, err)
			}
		}
		return nil
	}
	if !recorded {
		nrf, err := readRingFile(f.nextRing)
		if err != nil || nrf.Fingerprint != fp {
			return fmt.Errorf("the committed rotation of actor %s has no record of its new key in %s", name, f.nextRing)
		}
		if err := os.Rename(f.nextRing, f.ring); err != nil {
			return fmt.Errorf("record rotated key of actor %s: %w", name, err)
		}
	}
	if err := os.Rename(f.nextKey, f.key); err != nil {
		return fmt.Errorf("install rotated key of actor %s: %w", name, err)
	}
	syncDir(filepath.Dir(f.key))
	return nil
}

// syncDir makes renames in dir durable, as far as the system allows; a
// failure is not reported because the renames themselves succeeded.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// PendingRotation is a key rotation prepared on disk and not yet
// committed: the new private key and the record of the new ring sit beside
// the current ones, which still sign. The caller commits the rotation by
// storing the new public key as the actor's current key (in the same
// transaction as everything else the rotation writes), then calls Install;
// or it calls Discard. Until Install, LoadKeyRing decides from the
// committed key which ring a crash leaves.
type PendingRotation struct {
	// Ring is the ring after the rotation; Previous the ring before it.
	Ring     KeyRing
	Previous KeyRing
	files    rotationFiles
	name     string
}

// PrepareRotation prepares the replacement of the current key of the actor
// name in dir (committed as for LoadKeyRing) by a new RSA key of KeyBits
// bits: it writes the new key (mode 0600) and the record of the new ring
// beside the current ones and returns them, changing nothing that signs.
// In the new ring the old key is retired, published and accepted until
// now+overlap, and retired keys whose window ended are dropped.
func PrepareRotation(dir, name, committed string, now time.Time, overlap time.Duration) (*PendingRotation, error) {
	if overlap < 0 {
		return nil, fmt.Errorf("key overlap %s is negative", overlap)
	}
	old, err := LoadKeyRing(dir, name, committed)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key for actor %s: %w", name, err)
	}
	oldPEM, err := PublicKeyPEM(&old.Current.PublicKey)
	if err != nil {
		return nil, err
	}
	oldEd, err := DeriveEd25519Key(old.Current)
	if err != nil {
		return nil, fmt.Errorf("actor %s: %w", name, err)
	}
	fragment := "key-" + strconv.FormatInt(now.UnixNano(), 36)
	if fragment == old.Fragment {
		return nil, fmt.Errorf("actor %s was rotated at this very instant; try again", name)
	}
	ring := KeyRing{Current: key, Fragment: fragment,
		Retired: append(old.Published(now), RetiredKey{Fragment: old.Fragment, PublicKeyPEM: oldPEM, Until: now.Add(overlap).UTC(),
			Ed25519Multibase: Ed25519Multibase(oldEd.Public().(ed25519.PublicKey))})}
	fp, err := fingerprint(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key for actor %s: %w", name, err)
	}
	record, err := json.MarshalIndent(ringFile{Fragment: fragment, Fingerprint: fp, Retired: ring.Retired}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key record of actor %s: %w", name, err)
	}
	p := &PendingRotation{Ring: ring, Previous: old, files: filesOf(dir, name), name: name}
	// LoadKeyRing above removed the files of any earlier prepared rotation.
	for _, w := range []struct {
		path string
		data []byte
	}{{p.files.nextKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}, {p.files.nextRing, record}} {
		created, err := writeNewFile(dir, w.path, w.data)
		if err == nil && !created {
			err = fmt.Errorf("%s exists: another rotation of actor %s is being prepared", w.path, name)
		}
		if err != nil {
			_ = p.Discard()
			return nil, err
		}
	}
	return p, nil
}

// Install puts the files of a committed rotation in place: the new ring's
// record, then its key. A failure leaves files that LoadKeyRing installs
// at the next load, since the rotation is committed.
func (p *PendingRotation) Install() error {
	if err := os.Rename(p.files.nextRing, p.files.ring); err != nil {
		return fmt.Errorf("record rotated key of actor %s: %w", p.name, err)
	}
	if err := os.Rename(p.files.nextKey, p.files.key); err != nil {
		return fmt.Errorf("install rotated key of actor %s: %w", p.name, err)
	}
	syncDir(filepath.Dir(p.files.key))
	return nil
}

// Discard removes the files of a rotation that was not committed.
func (p *PendingRotation) Discard() error {
	var errs []error
	for _, path := range []string{p.files.nextRing, p.files.nextKey} {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("discard the prepared rotation of actor %s: %w", p.name, errors.Join(errs...))
	}
	return nil
}

// WithRing returns l signing with the ring's current key under its key id
// (and with the Ed25519 key derived from it, under the matching Ed25519
// key id) and publishing the ring's retired keys that are still inside
// their overlap window at now.
func (l Local) WithRing(ring KeyRing, now time.Time) Local {
	l.Key = ring.Current
	l.KeyID = l.ID + "#" + ring.Fragment
	if ed, err := DeriveEd25519Key(ring.Current); err == nil {
		l.EdKey, l.EdKeyID = ed, l.ID+"#"+Ed25519Fragment(ring.Fragment)
	} else {
		// A ring always holds a private key (LoadKeyRing); without one the
		// actor has no Ed25519 key rather than a stale one.
		l.EdKey, l.EdKeyID = nil, ""
	}
	l.Retired = ring.Published(now)
	return l
}
