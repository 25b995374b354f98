package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, DataKey: testKey(8)})
		ctx := context.Background()
		now := clock.Now()
		if err := db.CreateSession(ctx, "s1", Session{CSRF: "c1", Expires: now.Add(time.Hour)}, now, 3); err != nil {
			t.Fatal(err)
		}
		s, ok, err := db.Session(ctx, "s1", now)
		if err != nil || !ok || s.CSRF != "c1" {
			t.Fatalf("Session = %+v, %v, %v", s, ok, err)
		}
		if err := db.UpdateSession(ctx, "s1", func(s *Session) { s.Flash, s.FlashOK = "done", true }); err != nil {
			t.Fatal(err)
		}
		if s, _, _ := db.Session(ctx, "s1", now); s.Flash != "done" || !s.FlashOK {
			t.Errorf("after UpdateSession: %+v", s)
		}
		if _, ok, _ := db.Session(ctx, "s1", now.Add(2*time.Hour)); ok {
			t.Error("an expired session is still valid")
		}
		if _, ok, _ := db.Session(ctx, "unknown", now); ok {
			t.Error("an unknown id has a session")
		}
		// The bucket never holds more than max: the session that expires
		// first goes, and expired ones go at the next login.
		for i := 2; i <= 4; i++ {
			if err := db.CreateSession(ctx, fmt.Sprintf("s%d", i), Session{Expires: now.Add(time.Duration(i) * time.Hour)}, now, 3); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok, _ := db.Session(ctx, "s1", now); ok {
			t.Error("the session that expires first was not evicted at the limit")
		}
		if n := countBucket(t, db, bucketSessions, ""); n != 3 {
			t.Errorf("%d sessions kept, want 3", n)
		}
		if err := db.CreateSession(ctx, "s5", Session{Expires: now.Add(10 * time.Hour)}, now.Add(5*time.Hour), 3); err != nil {
			t.Fatal(err)
		}
		if n := countBucket(t, db, bucketSessions, ""); n != 1 {
			t.Errorf("%d sessions kept after the others expired, want 1", n)
		}
		if err := db.DeleteSession(ctx, "s5"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := db.Session(ctx, "s5", now); ok {
			t.Error("a deleted session is still valid")
		}
		// The store keys sessions by a hash: no id is stored.
		if err := db.View(ctx, func(tx *ReadTx) error {
			if tx.bucket(bucketSessions).Get([]byte("s5")) != nil {
				t.Error("a session id is stored as it is")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}
