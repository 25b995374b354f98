package actor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRotateKey rotates an actor's key twice and checks the ring: the new
// key signs, its file is 0600, the old keys stay published for the overlap
// and no longer after it, and the ring survives a reload.
func TestRotateKey(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadKeyRing(dir, "vendor")
	if err != nil {
		t.Fatal(err)
	}
	if first.Fragment != MainKeyFragment || len(first.Retired) != 0 {
		t.Fatalf("a new actor's ring is %q with %d retired keys, want %q and none", first.Fragment, len(first.Retired), MainKeyFragment)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	second, err := RotateKey(dir, "vendor", t0, week)
	if err != nil {
		t.Fatal(err)
	}
	if second.Fragment == MainKeyFragment || second.Current.Equal(first.Current) {
		t.Fatalf("rotation kept the key or its id (%q)", second.Fragment)
	}
	info, err := os.Stat(filepath.Join(dir, "vendor.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("rotated key file has mode %04o, want 0600", perm)
	}
	oldPEM, _ := PublicKeyPEM(&first.Current.PublicKey)
	if pub := second.Published(t0.Add(week - time.Second)); len(pub) != 1 || pub[0].Fragment != MainKeyFragment || pub[0].PublicKeyPEM != oldPEM {
		t.Errorf("inside the overlap the published retired keys are %+v, want the old main key", pub)
	}
	if pub := second.Published(t0.Add(week)); len(pub) != 0 {
		t.Errorf("after the overlap %d retired keys are still published", len(pub))
	}

	reloaded, err := LoadKeyRing(dir, "vendor")
	if err != nil {
		t.Fatal(err)
	}
	if reloaded.Fragment != second.Fragment || !reloaded.Current.Equal(second.Current) || len(reloaded.Retired) != 1 {
		t.Fatalf("the reloaded ring differs from the rotated one: %q, %d retired", reloaded.Fragment, len(reloaded.Retired))
	}
	if key, _, err := LoadOrCreateKey(dir, "vendor"); err != nil || !key.Equal(second.Current) {
		t.Errorf("LoadOrCreateKey after rotation: %v, same key %t", err, key != nil && key.Equal(second.Current))
	}

	// A second rotation after the first overlap ended drops the main key.
	third, err := RotateKey(dir, "vendor", t0.Add(2*week), week)
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Retired) != 1 || third.Retired[0].Fragment != second.Fragment {
		t.Errorf("after a second rotation the retired keys are %+v, want only the second key", third.Retired)
	}
}

// TestLoadKeyRingFinishesInterruptedRotation leaves the files of a rotation
// interrupted before and after its record was written and checks that the
// ring loads consistently.
func TestLoadKeyRingFinishesInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rotated, err := RotateKey(dir, "vendor", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Interrupted after the record: the recorded key sits in NAME.next.pem
	// and NAME.pem still holds the previous key.
	pemPath, nextPath := filepath.Join(dir, "vendor.pem"), filepath.Join(dir, "vendor.next.pem")
	if err := os.Rename(pemPath, nextPath); err != nil {
		t.Fatal(err)
	}
	other, _, err := LoadOrCreateKey(dir, "vendor") // the "previous" key
	if err != nil {
		t.Fatal(err)
	}
	ring, err := LoadKeyRing(dir, "vendor")
	if err != nil {
		t.Fatal(err)
	}
	if !ring.Current.Equal(rotated.Current) || other.Equal(rotated.Current) {
		t.Errorf("an interrupted rotation was not finished with the recorded key")
	}
	if _, err := os.Stat(nextPath); !os.IsNotExist(err) {
		t.Errorf("the recorded key file stays beside the installed one: %v", err)
	}

	// Interrupted before the record: a stray new key is discarded.
	stray, _, err := LoadOrCreateKey(dir, "stray")
	if err != nil {
		t.Fatal(err)
	}
	_ = stray
	if err := os.Rename(filepath.Join(dir, "stray.pem"), nextPath); err != nil {
		t.Fatal(err)
	}
	ring, err = LoadKeyRing(dir, "vendor")
	if err != nil {
		t.Fatal(err)
	}
	if !ring.Current.Equal(rotated.Current) {
		t.Errorf("an unrecorded key replaced the current one")
	}
	if _, err := os.Stat(nextPath); !os.IsNotExist(err) {
		t.Errorf("the unrecorded key file was kept: %v", err)
	}
}

// TestDocumentPublishesRetiredKeys checks that a rotated actor's document
// lists its new key first and its retired key under the old key id, as key
// resolution reads it, and only the new key once the overlap has ended.
func TestDocumentPublishesRetiredKeys(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadKeyRing(dir, "vendor")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ring, err := RotateKey(dir, "vendor", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewLocal("https://cvd.example", "vendor", Organization, first.Current)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at        time.Time
		oldListed bool
	}{{t0.Add(time.Minute), true}, {t0.Add(time.Hour), false}} {
		l := base.WithRing(ring, tc.at)
		if l.KeyID == base.KeyID || !l.Key.Equal(ring.Current) {
			t.Fatalf("the rotated actor signs as %s", l.KeyID)
		}
		body, err := l.Document()
		if err != nil {
			t.Fatal(err)
		}
		var doc remoteDocument
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		keys, err := doc.keys()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 || keys[0].ID != l.KeyID {
			t.Errorf("at %s the document's first key is %+v, want %s", tc.at, keys, l.KeyID)
		}
		old, listed, err := doc.findKey(base.KeyID)
		if err != nil || listed != tc.oldListed {
			t.Errorf("at %s the old key %s listed = %t (%v), want %t", tc.at, base.KeyID, listed, err, tc.oldListed)
		}
		if listed {
			if pub, err := ParsePublicKeyPEM(old.PublicKeyPem); err != nil || !first.Current.PublicKey.Equal(pub) {
				t.Errorf("the old key id publishes another key (%v)", err)
			}
		}
	}
}

// TestKeyFetcherHonoursRotation serves a rotated actor's document and
// resolves its old key id with an injected clock: accepted inside the
// overlap, cached no longer than the overlap, and refused with a sentence
// once it has ended.
func TestKeyFetcherHonoursRotation(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadKeyRing(dir, "alice")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ring, err := RotateKey(dir, "alice", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t)
	p.mu.Lock()
	p.docs["/actors/alice"] = func(base string) (int, string, string) {
		l, err := NewLocal(base, "alice", Organization, first.Current)
		if err != nil {
			return 500, "text/plain", err.Error()
		}
		// The rotated actor as its node serves it while the old key is
		// still inside its window.
		l = l.WithRing(ring, t0)
		b, err := l.Document()
		if err != nil {
			return 500, "text/plain", err.Error()
		}
		return 200, ContentType, string(b)
	}
	p.mu.Unlock()
	now := t0.Add(time.Minute)
	kf := newTestKeyFetcher(t, NewMemoryKeyCache(), func() time.Time { return now })
	oldKeyID := p.srv.URL + "/actors/alice#" + MainKeyFragment
	newKeyID := p.srv.URL + "/actors/alice#" + ring.Fragment
	for _, id := range []string{oldKeyID, newKeyID} {
		if _, err := kf.ResolveKey(context.Background(), id, false); err != nil {
			t.Fatalf("inside the overlap key %s: %v", id, err)
		}
	}
	hits := p.hits.Load()
	if _, err := kf.ResolveKey(context.Background(), oldKeyID, false); err != nil || p.hits.Load() != hits {
		t.Errorf("the old key inside the overlap was not answered from the cache (%v)", err)
	}
	now = t0.Add(time.Hour + time.Second)
	_, err = kf.ResolveKey(context.Background(), oldKeyID, false)
	if err == nil || !strings.Contains(err.Error(), "was rotated away") {
		t.Errorf("the old key after the overlap: %v, want a refusal saying it was rotated away", err)
	}
	if _, err := kf.ResolveKey(context.Background(), newKeyID, false); err != nil {
		t.Errorf("the new key after the overlap: %v", err)
	}
}
