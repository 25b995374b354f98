package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestAccountsBuckets checks the accounts' namespace on both engines: a
// read finds nothing before a write created a sub-bucket, values are
// sealed under the sub-bucket's path (a value moved to another
// sub-bucket does not open), and prefixes range in key order.
func TestAccountsBuckets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{DataKey: testKey(3)})
		ctx := context.Background()
		err := db.View(ctx, func(tx *ReadTx) error {
			if _, err := tx.Accounts("users"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Accounts before any write: %v, want ErrNotFound", err)
			}
			called := false
			if err := tx.AccountsView("users", func(*AccountsBucket) error { called = true; return nil }); err != nil || called {
				t.Errorf("AccountsView of a missing bucket: called %v, %v", called, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(ctx, func(tx *Tx) error {
			users, err := tx.Accounts("users")
			if err != nil {
				return err
			}
			for _, k := range []string{"u/2", "u/1", "v/1"} {
				if err := users.Put([]byte(k), []byte("record "+k)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var got []string
		err = db.View(ctx, func(tx *ReadTx) error {
			return tx.AccountsView("users", func(b *AccountsBucket) error {
				return b.RangePrefix([]byte("u/"), func(k, v []byte) error {
					got = append(got, string(k)+"="+string(v))
					return nil
				})
			})
		})
		if err != nil || len(got) != 2 || got[0] != "u/1=record u/1" || got[1] != "u/2=record u/2" {
			t.Fatalf("range u/ = %q, %v", got, err)
		}
		// The sealed value of one sub-bucket copied into another fails
		// the read that meets it.
		err = db.Update(ctx, func(tx *Tx) error {
			raw := tx.tx.Bucket(bucketAccounts).Bucket([]byte("users")).Get([]byte("u/1"))
			if !isSealed(raw) || bytes.Contains(raw, []byte("record")) {
				t.Errorf("stored value %q is not sealed", raw)
			}
			tokens, err := tx.Accounts("tokens")
			if err != nil {
				return err
			}
			return tokens.b.Put([]byte("u/1"), raw)
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(ctx, func(tx *ReadTx) error {
			tokens, err := tx.Accounts("tokens")
			if err != nil {
				return err
			}
			if v := tokens.Get([]byte("u/1")); v != nil {
				t.Errorf("a value moved between sub-buckets opened: %q", v)
			}
			return nil
		})
		if !errors.Is(err, ErrDataKey) || !errors.Is(err, ErrDamaged) {
			t.Errorf("reading a moved value: %v, want ErrDataKey and ErrDamaged", err)
		}
		// The store's check finds it too; remove it, so that the check
		// at the end of the test passes.
		if err := db.Check(ctx); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), `accounts/tokens "u/1"`) {
			t.Errorf("Check of a store holding a moved value: %v, want ErrDamaged naming it", err)
		}
		err = db.Update(ctx, func(tx *Tx) error {
			return tx.tx.Bucket(bucketAccounts).Bucket([]byte("tokens")).Delete([]byte("u/1"))
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestActivitySentBy checks that an outbound activity keeps the person
// who sent it, with its audit record, and that an activity written
// without one reads as before.
func TestActivitySentBy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{DataKey: testKey(4)})
		ctx := context.Background()
		mustPutActor(t, db, "vendor")
		for _, tc := range []struct{ id, by string }{
			{"https://node.example/activities/by-alice", "alice"},
			{"https://node.example/activities/by-node", ""},
		} {
			if err := db.EnqueueOutbound(ctx, Outbound{ID: tc.id, Actor: "vendor", Body: activityBody(tc.id, "x"), SentBy: tc.by}, nil); err != nil {
				t.Fatal(err)
			}
			a, err := db.Activity(ctx, tc.id)
			if err != nil || a.SentBy != tc.by || a.Actor != "vendor" || !bytes.Contains(a.Body, []byte(tc.id)) {
				t.Errorf("activity %s = %+v, %v; want sent by %q", tc.id, a, err, tc.by)
			}
		}
		recs, _, err := db.AuditPage(ctx, 0, 10)
		if err != nil || len(recs) != 2 {
			t.Fatalf("audit = %d records, %v", len(recs), err)
		}
		if recs[0].Principal != "alice" || recs[1].Principal != "" {
			t.Errorf("audit principals = %q, %q; want alice and none", recs[0].Principal, recs[1].Principal)
		}
		// Records with and without a principal chain together.
		v, err := db.VerifyAudit(ctx)
		if err != nil || !v.OK || v.Records != 2 {
			t.Errorf("VerifyAudit = %+v, %v", v, err)
		}
	})
}

// TestAuditPrincipalIsHashed checks that a record's principal is covered
// by its hash: changing it breaks the chain.
func TestAuditPrincipalIsHashed(t *testing.T) {
	rec := AuditRecord{Seq: 1, Kind: AuditAdmin, Decision: DecisionDone, Principal: "alice via token 3f9a"}
	body := rec.canonical(nil)
	got, _, _, err := decodeAudit(append(body, make([]byte, 32)...))
	if err != nil || got.Principal != rec.Principal {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	other := rec
	other.Principal = "mallory via token 3f9a"
	if bytes.Equal(rec.canonical(nil), other.canonical(nil)) {
		t.Error("two principals encode alike")
	}
	plain := rec
	plain.Principal = ""
	if enc := plain.canonical(nil); enc[0] != tagAudit {
		t.Errorf("a record without a principal has tag %#x, want the old layout's %#x", enc[0], tagAudit)
	}
}
