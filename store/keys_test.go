package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// TestRemoteKeyAndItsAuditRecordCommitTogether stores remote keys and
// checks that each key seen for the first time, or with another PEM, is in
// the audit log from the same transaction; an unchanged refresh adds no
// record; and a write whose audit record cannot be appended leaves the
// cache as it was.
func TestRemoteKeyAndItsAuditRecordCommitTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		k := RemoteKey{KeyID: "https://peer.example/actors/f#main-key", Owner: "https://peer.example/actors/f",
			PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nA\n-----END PUBLIC KEY-----\n", FetchedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		digest := func(pem string) string {
			sum := sha256.Sum256([]byte(pem))
			return hex.EncodeToString(sum[:])
		}
		keyRecords := func() []AuditRecord {
			t.Helper()
			page, _, err := db.AuditPage(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var out []AuditRecord
			for _, r := range page {
				if r.Kind == AuditKey {
					out = append(out, r)
				}
			}
			return out
		}

		if err := db.PutRemoteKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		recs := keyRecords()
		if len(recs) != 1 || recs[0].Decision != DecisionFetched || recs[0].KeyID != k.KeyID || recs[0].Signer != k.Owner || recs[0].Digest != digest(k.PublicKeyPEM) {
			t.Fatalf("after the first fetch the key records are %+v; want one %q record of %s with the PEM's digest", recs, DecisionFetched, k.KeyID)
		}

		k.FetchedAt = k.FetchedAt.Add(time.Hour)
		if err := db.PutRemoteKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if recs := keyRecords(); len(recs) != 1 {
			t.Fatalf("an unchanged refresh added a record: %+v", recs)
		}

		changed := k
		changed.PublicKeyPEM = "-----BEGIN PUBLIC KEY-----\nB\n-----END PUBLIC KEY-----\n"
		if err := db.PutRemoteKey(ctx, changed); err != nil {
			t.Fatal(err)
		}
		if recs := keyRecords(); len(recs) != 2 || recs[1].Decision != DecisionChanged || recs[1].Digest != digest(changed.PublicKeyPEM) {
			t.Fatalf("after a changed key the records are %+v; want a second, %q, record", recs, DecisionChanged)
		}

		// A damaged last audit record makes every append fail: the key write
		// must fail with it and change nothing.
		if err := db.Update(ctx, func(tx *Tx) error { return tx.bucket(bucketAudit).Put(seqKey(1<<40), []byte("short")) }); err != nil {
			t.Fatal(err)
		}
		third := changed
		third.PublicKeyPEM = "-----BEGIN PUBLIC KEY-----\nC\n-----END PUBLIC KEY-----\n"
		if err := db.PutRemoteKey(ctx, third); err == nil {
			t.Fatal("a key was stored although its audit record could not be written")
		}
		fresh := RemoteKey{KeyID: "https://peer.example/actors/g#main-key", Owner: "https://peer.example/actors/g", PublicKeyPEM: third.PublicKeyPEM}
		if err := db.PutRemoteKey(ctx, fresh); err == nil {
			t.Fatal("a new key was stored although its audit record could not be written")
		}
		if got, err := db.RemoteKey(ctx, k.KeyID); err != nil || got.PublicKeyPEM != changed.PublicKeyPEM {
			t.Fatalf("after the failed write the cached key is %+v, %v; want the PEM before it", got, err)
		}
		if _, err := db.RemoteKey(ctx, fresh.KeyID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the new key is cached without its audit record: %v", err)
		}
		if err := db.Update(ctx, func(tx *Tx) error { return tx.bucket(bucketAudit).Delete(seqKey(1 << 40)) }); err != nil {
			t.Fatal(err)
		}
	})
}
