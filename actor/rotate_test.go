package actor

import (
	"context"
	"crypto/ed25519"
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
	first, err := LoadKeyRing(dir, "vendor", "")
	if err != nil {
		t.Fatal(err)
	}
	if first.Fragment != MainKeyFragment || len(first.Retired) != 0 {
		t.Fatalf("a new actor's ring is %q with %d retired keys, want %q and none", first.Fragment, len(first.Retired), MainKeyFragment)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	second, err := rotateKey(t, dir, "vendor", t0, week)
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
	firstEd, _ := DeriveEd25519Key(first.Current)
	if pub := second.Published(t0); len(pub) != 1 || pub[0].Ed25519Multibase != Ed25519Multibase(firstEd.Public().(ed25519.PublicKey)) {
		t.Errorf("the retired key does not name the Ed25519 key it signed with: %+v", pub)
	}
	l, err := NewLocal("https://node.example", "vendor", Organization, first.Current)
	if err != nil {
		t.Fatal(err)
	}
	l = l.WithRing(second, t0)
	secondEd, _ := DeriveEd25519Key(second.Current)
	if ed, ok := l.Ed25519(); !ok || ed.KeyID != l.ID+"#"+second.Fragment+"-ed25519" || !ed.Key.Equal(secondEd) {
		t.Errorf("after the rotation the actor signs with Ed25519 key %s", ed.KeyID)
	}
	if pub := second.Published(t0.Add(week)); len(pub) != 0 {
		t.Errorf("after the overlap %d retired keys are still published", len(pub))
	}

	reloaded, err := LoadKeyRing(dir, "vendor", "")
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
	third, err := rotateKey(t, dir, "vendor", t0.Add(2*week), week)
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Retired) != 1 || third.Retired[0].Fragment != second.Fragment {
		t.Errorf("after a second rotation the retired keys are %+v, want only the second key", third.Retired)
	}
}

// rotateKey prepares a rotation and installs it at once, as a node does
// after committing it.
func rotateKey(t *testing.T, dir, name string, now time.Time, overlap time.Duration) (KeyRing, error) {
	t.Helper()
	p, err := PrepareRotation(dir, name, "", now, overlap)
	if err != nil {
		return KeyRing{}, err
	}
	return p.Ring, p.Install()
}

// TestLoadKeyRingSettlesInterruptedRotation leaves the files of a rotation
// stopped at each point between its preparation and its installation and
// checks that the ring loads as the old one or the new one, whichever the
// store committed, with no file of the rotation left behind.
func TestLoadKeyRingSettlesInterruptedRotation(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		// committed: "old", "new" or "" (the store names no key).
		committed string
		// installed: how far Install got (0 none, 1 the record renamed).
		installed int
		wantNew   bool
	}{
		{"prepared, store still names the old key", "old", 0, false},
		{"prepared, store names no key", "", 0, false},
		{"committed, not installed", "new", 0, true},
		{"committed, record installed, key not", "new", 1, true},
		{"record installed, store names no key", "", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			old, err := LoadKeyRing(dir, "vendor", "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := PrepareRotation(dir, "vendor", "", t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if p.Previous.Current == nil || !p.Previous.Current.Equal(old.Current) {
				t.Fatal("the prepared rotation does not start from the current ring")
			}
			// Preparing changes nothing that loads.
			if ring, err := LoadKeyRing(dir, "vendor", mustPEM(t, old)); err != nil || !ring.Current.Equal(old.Current) {
				t.Fatalf("a prepared rotation changed the ring: %v", err)
			}
			// That load discarded the prepared files; prepare again.
			if p, err = PrepareRotation(dir, "vendor", "", t0, time.Hour); err != nil {
				t.Fatal(err)
			}
			if tc.installed >= 1 {
				if err := os.Rename(filepath.Join(dir, "vendor.next.json"), filepath.Join(dir, "vendor.keys.json")); err != nil {
					t.Fatal(err)
				}
			}
			committed := map[string]string{"old": mustPEM(t, old), "new": mustPEM(t, p.Ring), "": ""}[tc.committed]
			ring, err := LoadKeyRing(dir, "vendor", committed)
			if err != nil {
				t.Fatal(err)
			}
			want := old
			if tc.wantNew {
				want = p.Ring
			}
			if !ring.Current.Equal(want.Current) || ring.Fragment != want.Fragment || len(ring.Retired) != len(want.Retired) {
				t.Fatalf("loaded ring %q with %d retired keys; want %q with %d (new: %t)", ring.Fragment, len(ring.Retired), want.Fragment, len(want.Retired), tc.wantNew)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "vendor.next*")); len(left) != 0 {
				t.Errorf("files of the rotation left behind: %v", left)
			}
			if again, err := LoadKeyRing(dir, "vendor", ""); err != nil || !again.Current.Equal(want.Current) {
				t.Errorf("a second load gives another ring (%v)", err)
			}
		})
	}
}

func mustPEM(t *testing.T, r KeyRing) string {
	t.Helper()
	p, err := PublicKeyPEM(&r.Current.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDocumentPublishesRetiredKeys checks that a rotated actor's document
// lists its new key first and its retired key under the old key id, as key
// resolution reads it, and only the new key once the overlap has ended.
func TestDocumentPublishesRetiredKeys(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadKeyRing(dir, "vendor", "")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ring, err := rotateKey(t, dir, "vendor", t0, time.Hour)
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
	first, err := LoadKeyRing(dir, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ring, err := rotateKey(t, dir, "alice", t0, time.Hour)
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
