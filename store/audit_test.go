package store

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openAuditFile opens a store at a fixed path with fsync off; unlike
// openTestDB it leaves closing to the test, which tampers with the file
// between opens.
func openAuditFile(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{NoSync: true, Now: newTestClock().Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

// tamperAudit edits the audit bucket of the closed store file at path
// directly through bbolt, as an attacker with the file would.
func tamperAudit(t *testing.T, path string, fn func(b *bolt.Bucket) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketAudit)) }); err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// writeAuditLog writes n refused-inbound records and returns the file path.
func writeAuditLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db := openAuditFile(t, path)
	ctx := context.Background()
	for i := range n {
		if err := db.Audit(ctx, AuditRecord{Kind: AuditInbound, Decision: DecisionRefused, Status: 401,
			Reason: "bad signature", Remote: "192.0.2.1", KeyID: "https://peer.example/actors/a#key", Dropped: uint64(i)}); err != nil {
			t.Fatalf("Audit: %v", err)
		}
	}
	v, err := db.VerifyAudit(ctx)
	if err != nil || !v.OK || v.Records != uint64(n) {
		t.Fatalf("VerifyAudit of an intact log = %+v, %v; want OK with %d records", v, err, n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyFile(t *testing.T, path string) AuditVerdict {
	t.Helper()
	db := openAuditFile(t, path)
	defer db.Close()
	v, err := db.VerifyAudit(context.Background())
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	return v
}

func TestAuditChainAndPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		for i := range 5 {
			err := db.Update(ctx, func(tx *Tx) error {
				_, err := tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Actor: "api-token", Decision: DecisionDone, Reason: strings.Repeat("x", i)})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		page, next, err := db.AuditPage(ctx, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 3 || next != 3 || page[0].Seq != 1 || page[2].Seq != 3 {
			t.Fatalf("first page = %d records, next %d; want 1..3, next 3", len(page), next)
		}
		if page[0].Prev != "" || page[1].Prev != page[0].Hash || page[2].Prev != page[1].Hash {
			t.Fatalf("records are not chained: %+v", page)
		}
		if page[0].Time.IsZero() {
			t.Fatal("record has no time")
		}
		rest, next, err := db.AuditPage(ctx, next, 3)
		if err != nil || len(rest) != 2 || next != 0 || rest[0].Seq != 4 || rest[0].Prev != page[2].Hash {
			t.Fatalf("second page = %+v, next %d, %v; want records 4 and 5, no next", rest, next, err)
		}
		v, err := db.VerifyAudit(ctx)
		if err != nil || !v.OK || v.Records != 5 || v.Head != rest[1].Hash {
			t.Fatalf("VerifyAudit = %+v, %v; want OK, 5 records, head %s", v, err, rest[1].Hash)
		}
	})
}

func TestAuditRolledBackWithItsTransaction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		err := db.Update(ctx, func(tx *Tx) error {
			if _, err := tx.AppendAudit(AuditRecord{Kind: AuditInbound, Decision: DecisionAccepted}); err != nil {
				return err
			}
			return ErrConflict
		})
		if err == nil {
			t.Fatal("the failing write succeeded")
		}
		page, _, err := db.AuditPage(ctx, 0, 10)
		if err != nil || len(page) != 0 {
			t.Fatalf("a rolled-back transaction left audit records: %+v, %v", page, err)
		}
		if err := db.Audit(ctx, AuditRecord{Kind: AuditInbound}); err == nil {
			t.Fatal("a record without a decision was accepted")
		}
	})
}

func TestAuditRecordsStoreWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "vendor")
		body := []byte(`{"type":"Note"}`)
		if _, err := db.AcceptInbound(ctx, Inbound{ID: "https://peer.example/a/1", Recipient: "vendor", Sender: "https://peer.example/actors/f", KeyID: "https://peer.example/actors/f#main-key", Body: body}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AcceptInbound(ctx, Inbound{ID: "https://peer.example/a/1", Recipient: "vendor", Sender: "https://peer.example/actors/f", Body: body}, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.EnqueueOutbound(ctx, Outbound{ID: "https://node.example/a/2", Actor: "vendor", Body: body,
			Deliveries: []DeliveryTarget{{Recipient: "https://peer.example/actors/f"}}}, nil); err != nil {
			t.Fatal(err)
		}
		due, err := db.DueDeliveries(ctx, db.now().Add(1), 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("DueDeliveries = %v, %v", due, err)
		}
		if err := db.RetryDelivery(ctx, due[0].ID, db.now(), "503"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeadLetter(ctx, due[0].ID, "gone"); err != nil {
			t.Fatal(err)
		}
		page, _, err := db.AuditPage(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page {
			got = append(got, r.Kind+"/"+r.Decision)
		}
		want := "inbound/accepted inbound/duplicate outbound/enqueued outbound/retrying outbound/dead"
		if strings.Join(got, " ") != want {
			t.Fatalf("audit records = %q, want %q", strings.Join(got, " "), want)
		}
		if page[0].KeyID != "https://peer.example/actors/f#main-key" || page[0].Signer != "https://peer.example/actors/f" || len(page[0].Digest) != 64 {
			t.Fatalf("accepted record lacks signer, key id or digest: %+v", page[0])
		}
		if page[4].Reason != "gone" || page[4].Signer != "https://peer.example/actors/f" {
			t.Fatalf("dead-letter record = %+v", page[4])
		}
		if page[2].Reason != "queued for 1 recipient" {
			t.Errorf("enqueued record's reason = %q, want %q", page[2].Reason, "queued for 1 recipient")
		}
	})
}

func TestVerifyAuditFindsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(b *bolt.Bucket) error
		seq    uint64
		reason string
	}{
		{"flipped byte", func(b *bolt.Bucket) error {
			v := append([]byte(nil), b.Get(seqKey(3))...)
			i := strings.Index(string(v), "bad signature")
			v[i] ^= 0x20
			return b.Put(seqKey(3), v)
		}, 3, "was changed"},
		{"changed hash and content together", func(b *bolt.Bucket) error {
			// Rewriting a record with a fresh hash breaks the next link.
			rec, prev, _, err := decodeAudit(b.Get(seqKey(2)))
			if err != nil {
				return err
			}
			rec.Reason = "nothing to see"
			body := rec.canonical(prev)
			sum := sha256.Sum256(body)
			return b.Put(seqKey(2), append(body, sum[:]...))
		}, 3, "does not follow"},
		{"deleted record", func(b *bolt.Bucket) error { return b.Delete(seqKey(2)) }, 2, "missing"},
		{"deleted last record", func(b *bolt.Bucket) error { return b.Delete(seqKey(5)) }, 5, "missing"},
		{"swapped records", func(b *bolt.Bucket) error {
			a, c := append([]byte(nil), b.Get(seqKey(2))...), append([]byte(nil), b.Get(seqKey(4))...)
			if err := b.Put(seqKey(2), c); err != nil {
				return err
			}
			return b.Put(seqKey(4), a)
		}, 2, "reordered"},
		{"truncated record", func(b *bolt.Bucket) error { return b.Put(seqKey(1), []byte{tagAudit, 1}) }, 1, "cannot be decoded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeAuditLog(t, 5)
			tamperAudit(t, path, tc.tamper)
			v := verifyFile(t, path)
			if v.OK || v.BrokenSeq != tc.seq || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("VerifyAudit = %+v; want broken at %d with %q", v, tc.seq, tc.reason)
			}
		})
	}
}
