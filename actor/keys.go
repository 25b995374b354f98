package actor

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// KeyBits is the size of the RSA keys created for local actors.
const KeyBits = 2048

// MinRSABits is the smallest RSA modulus accepted from a peer.
const MinRSABits = 2048

// namePattern is the syntax of an actor name: it appears in URLs, in
// acct: URIs and as a file name, so it is kept to a safe subset.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateName reports whether name can be used as a local actor name:
// 1 to 64 characters of lower-case letters, digits, '.', '_' and '-',
// starting with a letter or digit.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("actor name %q is invalid: use 1-64 characters a-z, 0-9, '.', '_', '-', starting with a letter or digit", name)
	}
	return nil
}

// LoadOrCreateKey returns the private key of the actor name, kept in the
// PKCS#8 PEM file dir/NAME.pem. When the file does not exist it creates an
// RSA-2048 key, writes it with mode 0600 through a temporary file that is
// then linked into place (so a crash never leaves a partial key file, and a
// concurrent creator never has its key overwritten) and reports created.
// An existing file that is readable by group or others is refused.
func LoadOrCreateKey(dir, name string) (key *rsa.PrivateKey, created bool, err error) {
	if err := ValidateName(name); err != nil {
		return nil, false, err
	}
	path := filepath.Join(dir, name+".pem")
	key, err = loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create key directory %s: %w", dir, err)
	}
	key, err = rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, false, fmt.Errorf("generate RSA key for actor %s: %w", name, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode key for actor %s: %w", name, err)
	}
	won, err := writeNewFile(dir, path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, false, err
	}
	if !won {
		// Another process created the file first: use its key.
		key, err = loadKey(path)
		return key, false, err
	}
	return key, true, nil
}

// LoadKey returns the private key of the actor name from dir/NAME.pem,
// and found false (with a nil error) when there is no such file. Unlike
// LoadOrCreateKey it never generates a key, so it is cheap enough to call
// where slow work is not allowed, such as inside a store write.
func LoadKey(dir, name string) (key *rsa.PrivateKey, found bool, err error) {
	if err := ValidateName(name); err != nil {
		return nil, false, err
	}
	key, err = loadKey(filepath.Join(dir, name+".pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// loadKey reads an RSA private key from a PEM file, refusing files that
// group or others can read. A missing file yields an error wrapping
// fs.ErrNotExist.
func loadKey(path string) (*rsa.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible by group or others (mode %04o); restrict it with `chmod 600 %s`", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key file %s holds no PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// The parse error never contains key material.
		return nil, fmt.Errorf("key file %s: parse PKCS#8 key: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s holds a %s key; an RSA key is required", path, keyTypeName(parsed))
	}
	if key.N.BitLen() < MinRSABits {
		return nil, fmt.Errorf("key file %s holds a %d-bit RSA key; at least %d bits are required", path, key.N.BitLen(), MinRSABits)
	}
	return key, nil
}

// writeNewFile writes data to path with mode 0600 unless path already
// exists. It reports whether this call created the file.
func writeNewFile(dir, path string, data []byte) (bool, error) {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create temporary key file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("restrict temporary key file %s: %w", tmpName, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write temporary key file %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("sync temporary key file %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("close temporary key file %s: %w", tmpName, err)
	}
	// A hard link never replaces an existing file, unlike rename.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("install key file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the new directory entry durable
		d.Close()
	}
	return true, nil
}

// PublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block, the
// form ActivityPub actor documents carry in publicKeyPem.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParsePublicKeyPEM decodes the publicKeyPem of a remote actor: a PKIX
// "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY" block. Only RSA keys of at least
// MinRSABits and Ed25519 keys are accepted.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("publicKeyPem holds no PEM block")
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("publicKeyPem holds a %q block; a PUBLIC KEY is required", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse publicKeyPem: %w", err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// checkPublicKey accepts RSA keys of at least MinRSABits and Ed25519 keys.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key has %d bits; at least %d are required", k.N.BitLen(), MinRSABits)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("%s keys are not accepted (RSA or Ed25519 only)", keyTypeName(pub))
	}
}

// keyTypeName names the type of a public or private key for messages.
func keyTypeName(k any) string {
	switch k.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case nil:
		return "missing"
	default:
		t := fmt.Sprintf("%T", k)
		if len(t) > 0 && t[0] == '*' {
			t = t[1:]
		}
		switch t {
		case "ecdsa.PublicKey", "ecdsa.PrivateKey":
			return "ECDSA"
		case "ecdh.PublicKey", "ecdh.PrivateKey":
			return "ECDH"
		}
		return t
	}
}
