package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Encryption at rest. Every value that can carry report text or case content
// is sealed with AES-256-GCM under the node data key before it is written and
// opened when it is read: stored activities, queued deliveries, dead letters
// and every value in a case's buckets (case records, ledger entries, reports,
// notes, indexes). Keys of buckets (activity IRIs, sequence numbers, case ids,
// hashes) stay plain, so ordering and seeks keep working. Actor documents,
// remote public keys, the dedup records older versions wrote (digest and
// time), inbox and outbox pages (activity ids), the delivery index (due
// times, lane hashes and delivery ids as keys, empty values) and the meta
// bucket are not sealed.
//
// A sealed value is
//
//	0xE5 | key id (8 bytes) | nonce (12 bytes) | ciphertext and GCM tag
//
// The additional data is the bucket path ("activities", "cases/ID/notes") and
// the key, so a value copied under another key or into another bucket fails to
// open. The key id is the first 8 bytes of the SHA-256 of the key; it tells
// which key sealed a value, so a node without that key refuses with a clear
// error instead of returning garbage.

// DataKeySize is the size in bytes of a node data key (AES-256).
const DataKeySize = 32

// DataKeyFile is the name of the data key file inside the data directory, and
// DataKeyPreviousFile the name of the previous key kept while rotate-key
// re-encrypts the file.
const (
	DataKeyFile         = "data-key"
	DataKeyPreviousFile = "data-key.previous"
	dataKeyNextFile     = "data-key.next"
)

const (
	sealTag      byte = 0xE5
	keyIDSize         = 8
	nonceSize         = 12
	sealOverhead      = 1 + keyIDSize + nonceSize + 16
)

var keyDataKeyID = []byte("data_key_id")

// keyRetiredDataKeyIDs is the key, in the meta bucket, of the ids of the
// data keys the store was sealed with before a rotation, one after the
// other (keyIDSize bytes each): a process given one of them is told the
// key was retired, and what to give instead.
var keyRetiredDataKeyIDs = []byte("retired_data_key_ids")

// keyNextDataKeyID is the key, in the meta bucket, of the id of the key a
// rotation is re-encrypting the store under, recorded before the key files
// change and removed by the re-encryption: a process given that key before
// the rotation is finished is told to run rotate-key again.
var keyNextDataKeyID = []byte("next_data_key_id")

// ErrDataKey marks a data key that is missing, malformed, unsafe or not the
// one a value was sealed with.
var ErrDataKey = errors.New("data key")

// KeyID returns the short id of a data key: the hex of the first 8 bytes of
// its SHA-256.
func KeyID(key []byte) string {
	id := keyID(key)
	return hex.EncodeToString(id[:])
}

func keyID(key []byte) [keyIDSize]byte {
	sum := sha256.Sum256(key)
	var id [keyIDSize]byte
	copy(id[:], sum[:keyIDSize])
	return id
}

// sealer seals values with the current key and opens values sealed with the
// current or the previous key.
type sealer struct {
	cur    cipher.AEAD
	curID  [keyIDSize]byte
	others map[[keyIDSize]byte]cipher.AEAD
	// opened counts the values opened, for DB.ValuesOpened.
	opened atomic.Uint64
	// unknownKey, when set (a PostgreSQL store, once open), is asked about
	// a value sealed with a key the sealer does not have: it returns the
	// error to give instead when that is because another process rotated
	// the data key (and fences the store), nil otherwise.
	unknownKey atomic.Pointer[func() error]
}

func newSealer(current, previous []byte) (*sealer, error) {
	if current == nil {
		if previous != nil {
			return nil, fmt.Errorf("%w: a previous data key without a current one", ErrDataKey)
		}
		return nil, nil
	}
	aead, err := newAEAD(current)
	if err != nil {
		return nil, err
	}
	s := &sealer{cur: aead, curID: keyID(current), others: map[[keyIDSize]byte]cipher.AEAD{}}
	s.others[s.curID] = aead
	if previous != nil {
		p, err := newAEAD(previous)
		if err != nil {
			return nil, fmt.Errorf("previous: %w", err)
		}
		s.others[keyID(previous)] = p
	}
	return s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrDataKey, len(key), DataKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	return aead, nil
}

func (s *sealer) has(id [keyIDSize]byte) bool {
	_, ok := s.others[id]
	return ok
}

// additional returns the GCM additional data for a value under key in the
// bucket at path.
func additional(path string, key []byte) []byte {
	ad := make([]byte, 0, len(path)+1+len(key))
	ad = append(ad, path...)
	ad = append(ad, 0)
	return append(ad, key...)
}

// seal returns plain sealed under the current key for key in bucket path.
func (s *sealer) seal(path string, key, plain []byte) ([]byte, error) {
	out := make([]byte, 1+keyIDSize+nonceSize, len(plain)+sealOverhead)
	out[0] = sealTag
	copy(out[1:], s.curID[:])
	nonce := out[1+keyIDSize : 1+keyIDSize+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return s.cur.Seal(out, nonce, plain, additional(path, key)), nil
}

// open returns the plaintext of a value sealed for key in bucket path.
func (s *sealer) open(path string, key, sealed []byte) ([]byte, error) {
	s.opened.Add(1)
	if len(sealed) < sealOverhead || sealed[0] != sealTag {
		return nil, fmt.Errorf("%s %x: %w: value is not sealed", path, key, errCorrupt)
	}
	var id [keyIDSize]byte
	copy(id[:], sealed[1:1+keyIDSize])
	aead, ok := s.others[id]
	if !ok {
		if f := s.unknownKey.Load(); f != nil {
			if err := (*f)(); err != nil {
				return nil, err
			}
		}
		// The store was checked at open to be sealed with a key the
		// sealer has: a value sealed with another is not what the node
		// wrote (its key id damaged, or a value copied in from another
		// store).
		return nil, &DamagedError{
			Reason: fmt.Sprintf("value %s %s: %v: sealed with data key %x, which is not the key given, while the store is sealed with the key given", path, printKey(key), ErrDataKey, id[:]),
			Err:    ErrDataKey,
		}
	}
	nonce := sealed[1+keyIDSize : 1+keyIDSize+nonceSize]
	plain, err := aead.Open(nil, nonce, sealed[1+keyIDSize+nonceSize:], additional(path, key))
	if err != nil {
		// Sealed with a key the sealer has, and yet it does not open: its
		// bytes, or the key or bucket it is under, are not those it was
		// sealed with.
		return nil, &DamagedError{
			Reason: fmt.Sprintf("value %s %s: %v: it does not open with data key %x, which sealed it: it was altered (a failing disk, a bad copy) or moved under another key", path, printKey(key), ErrDataKey, id[:]),
			Err:    ErrDataKey,
		}
	}
	return plain, nil
}

// printKey returns key for a message: quoted when it is printable text
// (an activity id, a case id), in hex otherwise (a sequence number).
func printKey(key []byte) string {
	if utf8.Valid(key) && !bytes.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(string(key))
	}
	return hex.EncodeToString(key)
}

// isSealed reports whether v carries a seal header.
func isSealed(v []byte) bool { return len(v) >= sealOverhead && v[0] == sealTag }

// DataKeys are the keys a node opens its store with: the current key and,
// while rotate-key has not finished, the previous one.
type DataKeys struct {
	Current  []byte
	Previous []byte
	// FromEnv says the current key came from the environment.
	FromEnv bool
	// Created names the key file LoadDataKeys created (it was missing),
	// so that a caller whose store turns out to be sealed with another
	// key can remove it again; "" when the key was there.
	Created string
}

// WrongKeyError is the error of opening a store sealed with a data key the
// node does not have; it wraps ErrDataKey. Sealed and Current are the ids
// (KeyID) of the store's key and of the node's.
type WrongKeyError struct {
	Sealed, Current string
	// Retired: the key given is one a rotation of this store replaced
	// (the store records the ids of the keys it was sealed with before).
	Retired bool
	// Unfinished: the key given is the one a rotation that did not finish
	// was re-encrypting the store under.
	Unfinished bool
}

// Error says which key the store needs.
func (e *WrongKeyError) Error() string {
	if e.Unfinished {
		return fmt.Sprintf("%v: the store is sealed with data key %s, not the key given (%s): a rotation to the key given did not finish; run vultron rotate-key again, with every process stopped, to finish it", ErrDataKey, e.Sealed, e.Current)
	}
	if e.Retired {
		return fmt.Sprintf("%v: the store is sealed with data key %s, not the key given (%s), which was retired by rotate-key: give the key that replaced it (the key file rotate-key wrote, or VULTRON_DATA_KEY set from that file)", ErrDataKey, e.Sealed, e.Current)
	}
	return fmt.Sprintf("%v: the store is sealed with data key %s, not the key given (%s): give the key it is sealed with (--data-key-file, or VULTRON_DATA_KEY as the node's other processes have it)", ErrDataKey, e.Sealed, e.Current)
}

// Unwrap returns ErrDataKey.
func (e *WrongKeyError) Unwrap() error { return ErrDataKey }

// ParseDataKey decodes a data key given in base64 (VULTRON_DATA_KEY),
// which must hold DataKeySize bytes. A node checks it before it creates
// anything.
func ParseDataKey(envValue string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(envValue))
	if err != nil {
		return nil, fmt.Errorf("%w: VULTRON_DATA_KEY is not base64: %w", ErrDataKey, err)
	}
	if len(k) != DataKeySize {
		return nil, fmt.Errorf("%w: VULTRON_DATA_KEY holds %d bytes, want %d", ErrDataKey, len(k), DataKeySize)
	}
	return k, nil
}

// LoadDataKeys returns the node data key. A non-empty envValue (the base64
// key from VULTRON_DATA_KEY) wins; otherwise the key is read from file
// (dataDir/data-key when file is ""), which is created with 32 random bytes
// and mode 0600 if it does not exist and create is true. A key file readable
// or writable by group or others is refused. A data-key.previous beside the
// key file is loaded as the previous key.
func LoadDataKeys(dataDir, file, envValue string, create bool) (DataKeys, error) {
	if file == "" {
		file = filepath.Join(dataDir, DataKeyFile)
	}
	var keys DataKeys
	if envValue != "" {
		k, err := ParseDataKey(envValue)
		if err != nil {
			return DataKeys{}, err
		}
		keys.Current, keys.FromEnv = k, true
	} else {
		k, err := readKeyFile(file)
		if errors.Is(err, fs.ErrNotExist) && create {
			k, err = createKeyFile(file)
			keys.Created = file
		}
		if err != nil {
			return DataKeys{}, err
		}
		keys.Current = k
	}
	prev, err := readKeyFile(filepath.Join(filepath.Dir(file), DataKeyPreviousFile))
	switch {
	case err == nil:
		keys.Previous = prev
	case !errors.Is(err, fs.ErrNotExist):
		return DataKeys{}, err
	}
	return keys, nil
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o; it must be readable by its owner only (chmod 600 %s)", ErrDataKey, path, fi.Mode().Perm(), path)
	}
	k, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	if len(k) != DataKeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want %d", ErrDataKey, path, len(k), DataKeySize)
	}
	return k, nil
}

func createKeyFile(path string) ([]byte, error) {
	k := make([]byte, DataKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrDataKey, err)
	}
	if err := writeKeyFile(path, k); err != nil {
		return nil, err
	}
	return k, nil
}

// writeKeyFile writes k to path with mode 0600 through a temporary file
// of its own in the same directory (os.CreateTemp, which makes it 0600;
// hidden, named after path: see isTempFile), fsyncs it and renames it
// into place. Writers of one path
// at once (two requests that each pull the same shared key) never share
// a temporary file, so none renames another's from under it or
// truncates one already renamed into place.
func writeKeyFile(path string, k []byte) error {
	return writeKeyFileVia(path, k, os.CreateTemp)
}

// writeKeyFileVia is writeKeyFile with the function that creates the
// temporary file (os.CreateTemp), which a test replaces to make a write
// fail as a full disk does.
func writeKeyFileVia(path string, k []byte, createTemp func(dir, pattern string) (*os.File, error)) error {
	f, err := createTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	tmp := f.Name()
	// The errors of the file's methods name tmp and what failed
	// (*os.PathError): they are not named again.
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	// os.CreateTemp made it 0600 already.
	if _, err := f.Write(k); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrDataKey, err)
	}
	return syncDir(filepath.Dir(path))
}

// isTempFile reports whether a file's name is that of a write in
// progress, or one a crash interrupted: the temporary files of
// writeKeyFile and of the actor package's key files (".NAME.tmp-RANDOM"),
// and those of releases that wrote NAME.tmp.
func isTempFile(name string) bool {
	return strings.HasSuffix(name, ".tmp") || strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// isSealedBucket reports whether the values of the top-level bucket name are
// sealed. The cases and accounts buckets are sealed through CaseBucket.
func isSealedBucket(name []byte) bool {
	switch string(name) {
	case string(bucketActivities), string(bucketDeliveries), string(bucketDeadLetters), string(bucketEvents), string(bucketFiles), string(bucketSessions):
		return true
	}
	return false
}

// checkDataKey compares the data key id recorded in the meta bucket with the
// keys of s. An unencrypted file opened with a key is sealed in this
// transaction (migration); a file sealed with the previous key is resealed
// with the current one (the work of rotate-key). It returns how many values
// it sealed.
func checkDataKey(tx kvTx, s *sealer) (int, error) {
	meta := tx.Bucket(bucketMeta)
	raw := meta.Get(keyDataKeyID)
	if raw == nil {
		if s == nil {
			return 0, nil
		}
		n, err := resealAll(tx, s, false)
		if err != nil {
			return 0, fmt.Errorf("encrypt unencrypted file: %w", err)
		}
		return n, meta.Put(keyDataKeyID, s.curID[:])
	}
	if len(raw) != keyIDSize {
		return 0, fmt.Errorf("%w: malformed data key id record", ErrSchema)
	}
	var id [keyIDSize]byte
	copy(id[:], raw)
	if s == nil {
		return 0, fmt.Errorf("%w: the file is encrypted with data key %x; start with that key (data-key file or VULTRON_DATA_KEY)", ErrDataKey, id[:])
	}
	retired := meta.Get(keyRetiredDataKeyIDs)
	if !s.has(id) {
		if vid, ok := firstSealedID(tx); ok && s.has(vid) {
			return 0, &DamagedError{
				Reason: fmt.Sprintf("its record of the data key it is sealed with names key %x, but its values are sealed with the key given (%x): the record was damaged", id[:], vid[:]),
				Err:    ErrDataKey,
			}
		}
		return 0, &WrongKeyError{Sealed: fmt.Sprintf("%x", id[:]), Current: fmt.Sprintf("%x", s.curID[:]), Retired: hasKeyID(retired, s.curID), Unfinished: bytes.Equal(meta.Get(keyNextDataKeyID), s.curID[:])}
	}
	if id == s.curID {
		return 0, nil
	}
	n, err := resealAll(tx, s, true)
	if err != nil {
		return 0, fmt.Errorf("re-encrypt with data key %x: %w", s.curID[:], err)
	}
	if !hasKeyID(retired, id) {
		if err := meta.Put(keyRetiredDataKeyIDs, append(cloneBytes(retired), id[:]...)); err != nil {
			return 0, err
		}
	}
	if meta.Get(keyNextDataKeyID) != nil {
		if err := meta.Delete(keyNextDataKeyID); err != nil {
			return 0, err
		}
	}
	return n, meta.Put(keyDataKeyID, s.curID[:])
}

// firstSealedID returns the id of the key that sealed the first value of
// the first sealed top-level bucket that holds one, and whether there is
// one: what the store's values say they are sealed with, read at the cost
// of one value per bucket.
func firstSealedID(tx kvTx) ([keyIDSize]byte, bool) {
	for _, name := range [][]byte{bucketActivities, bucketDeliveries, bucketDeadLetters, bucketEvents, bucketFiles} {
		b := tx.Bucket(name)
		if b == nil {
			continue
		}
		if _, v := b.Cursor().First(); isSealed(v) {
			return [keyIDSize]byte(v[1 : 1+keyIDSize]), true
		}
	}
	return [keyIDSize]byte{}, false
}

// hasKeyID reports whether the list of key ids ids (keyRetiredDataKeyIDs)
// holds id.
func hasKeyID(ids []byte, id [keyIDSize]byte) bool {
	for len(ids) >= keyIDSize {
		if [keyIDSize]byte(ids[:keyIDSize]) == id {
			return true
		}
		ids = ids[keyIDSize:]
	}
	return false
}

// resealAll seals every content value with the current key of s: plain
// values when sealed is false (an unencrypted file), values sealed with
// another key of s when sealed is true.
func resealAll(tx kvTx, s *sealer, sealed bool) (int, error) {
	n := 0
	reseal := func(path string, b kvBucket) error {
		type pair struct{ k, v []byte }
		var todo []pair
		err := b.ForEach(func(k, v []byte) error {
			if v == nil { // sub-bucket
				return nil
			}
			todo = append(todo, pair{cloneBytes(k), cloneBytes(v)})
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range todo {
			plain := p.v
			if sealed {
				if isSealed(p.v) && [keyIDSize]byte(p.v[1:1+keyIDSize]) == s.curID {
					continue
				}
				if plain, err = s.open(path, p.k, p.v); err != nil {
					return err
				}
			}
			v, err := s.seal(path, p.k, plain)
			if err != nil {
				return err
			}
			if err := b.Put(p.k, v); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			n++
		}
		return nil
	}
	err := forEachSealedBucket(tx, reseal)
	return n, err
}

// forEachSealedBucket calls fn with every bucket whose values are sealed,
// and its path (the additional data of its values).
func forEachSealedBucket(tx kvTx, fn func(path string, b kvBucket) error) error {
	for _, name := range [][]byte{bucketActivities, bucketDeliveries, bucketDeadLetters, bucketEvents, bucketFiles, bucketSessions} {
		if err := fn(string(name), tx.Bucket(name)); err != nil {
			return err
		}
	}
	// The cases and the accounts are namespaces of nested buckets, each
	// sealed under its path (CaseBucket).
	var walk func(path string, b kvBucket) error
	walk = func(path string, b kvBucket) error {
		if err := fn(path, b); err != nil {
			return err
		}
		return b.ForEachBucket(func(k []byte) error {
			return walk(path+"/"+string(k), b.Bucket(k))
		})
	}
	for _, root := range [][]byte{bucketCases, bucketAccounts} {
		top := tx.Bucket(root)
		if top == nil {
			continue // a file from before the bucket, which Open creates next
		}
		err := top.ForEachBucket(func(k []byte) error {
			return walk(string(root)+"/"+string(k), top.Bucket(k))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// openAll opens every sealed value with the keys of s, and returns the
// first that does not open: a store rotate-key would fail to re-encrypt.
func openAll(tx kvTx, s *sealer) error {
	return forEachSealedBucket(tx, func(path string, b kvBucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil { // sub-bucket
				return nil
			}
			_, err := s.open(path, k, v)
			return err
		})
	})
}
