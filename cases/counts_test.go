package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/internal/crashtest"
	"github.com/openvultron/vultron/store"
)

// testDataKey seals the stores of these tests, as a node's are.
var testDataKey = []byte("0123456789abcdef0123456789abcdef")

// allCases returns every case of a test store, read in one go: the
// recount these tests compare the kept counts with.
func allCases(tx *store.ReadTx) ([]*Case, error) {
	var out []*Case
	err := tx.Cases(func(id string) error {
		if isIndexBucket(id) {
			return nil
		}
		c, err := loadCase(tx, id)
		if err != nil {
			return err
		}
		if c != nil && c.ID != "" {
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// recount counts the cases by state the slow way: every record decoded.
func recount(t *testing.T, db *store.DB) map[CaseState]int64 {
	t.Helper()
	out := map[CaseState]int64{}
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		all, err := allCases(tx)
		for _, c := range all {
			out[stateOf(c)]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCaseCounts fails the test unless Counts equals a recount.
func checkCaseCounts(t *testing.T, db *store.DB, when string) {
	t.Helper()
	var got map[CaseState]int64
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		got, err = Counts(tx)
		return err
	})
	if err != nil {
		t.Fatalf("%s: Counts: %v", when, err)
	}
	if want := recount(t, db); !maps.Equal(got, want) {
		t.Fatalf("%s: Counts = %v, a recount gives %v", when, got, want)
	}
}

// randomState puts c in a random embargo and world state.
func randomState(rng *rand.Rand, c *Case) {
	ems := cvdstate.EMStates()
	c.EM = ems[rng.IntN(len(ems))]
	c.PXA = cvdstate.PXA(rng.IntN(8))
}

// caseStep makes one random change to the stored cases, as the engine's
// transactions do: open cases, move one or several through states
// (several times in one transaction, or not at all), or fail after saving.
func caseStep(t *testing.T, db *store.DB, rng *rand.Rand, i int) {
	t.Helper()
	ids := func(tx *store.ReadTx) []string {
		var out []string
		all, err := allCases(tx)
		if err != nil {
			t.Error(err)
		}
		for _, c := range all {
			out = append(out, c.ID)
		}
		return out
	}
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		existing := ids(&tx.ReadTx)
		switch op := rng.IntN(5); {
		case op == 0 || len(existing) == 0:
			for j := range 1 + rng.IntN(3) {
				c := &Case{ID: fmt.Sprintf("https://v.example/cases/%d-%d", i, j)}
				randomState(rng, c)
				if err := saveCase(tx, c); err != nil {
					return err
				}
			}
			return nil
		case op == 3:
			c, err := loadCase(&tx.ReadTx, existing[rng.IntN(len(existing))])
			if err != nil {
				return err
			}
			return saveCase(tx, c) // saved in the state it is in
		default:
			// Move one to three cases (or one, then fail).
			moves := 1 + rng.IntN(3)
			if op == 4 {
				moves = 1
			}
			for range moves {
				c, err := loadCase(&tx.ReadTx, existing[rng.IntN(len(existing))])
				if err != nil {
					return err
				}
				randomState(rng, c)
				if err := saveCase(tx, c); err != nil {
					return err
				}
			}
			if op == 4 {
				return errors.New("refused after saving") // rolled back with its count
			}
			return nil
		}
	})
	if err != nil && err.Error() != "refused after saving" {
		t.Fatal(err)
	}
}

// openCountedStore opens a sealed store whose counts are complete.
func openCountedStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{NoSync: true, DataKey: testDataKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MigrateCounts(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestCountsFollowTheCases runs random sequences of case changes and checks
// after each that the kept counts equal a recount of the records, and that
// they still do after the store is closed and opened again.
func TestCountsFollowTheCases(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			db := openCountedStore(t, path)
			rng := rand.New(rand.NewPCG(seed, 3))
			for i := range 120 {
				caseStep(t, db, rng, i)
				checkCaseCounts(t, db, fmt.Sprintf("after step %d", i))
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openCountedStore(t, path)
			defer db.Close()
			checkCaseCounts(t, db, "after reopening")
		})
	}
}

// TestCountsNeedTheMigration: a store whose cases were not all counted
// says so instead of giving partial counts.
func TestCountsNeedTheMigration(t *testing.T) {
	db := openStore(t)
	update(t, db, func(tx *store.Tx) error { return saveCase(tx, &Case{ID: "https://v.example/cases/1"}) })
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		_, err := Counts(tx)
		return err
	})
	if !errors.Is(err, ErrCountsIncomplete) {
		t.Fatalf("Counts before MigrateCounts: %v, want ErrCountsIncomplete", err)
	}
}

// writeUncounted stores case records the way nodes did before the counts:
// the record only.
func writeUncounted(t *testing.T, db *store.DB, rng *rand.Rand, n int) {
	t.Helper()
	update(t, db, func(tx *store.Tx) error {
		for i := range n {
			c := &Case{ID: fmt.Sprintf("https://v.example/cases/old-%03d", i)}
			randomState(rng, c)
			v, err := json.Marshal(c)
			if err != nil {
				return err
			}
			b, err := tx.Case(c.ID)
			if err != nil {
				return err
			}
			if err := b.Put(keyCase, v); err != nil {
				return err
			}
		}
		// Buckets among the cases that are no case.
		if _, err := tx.Case(objectIndex); err != nil {
			return err
		}
		_, err := tx.Case(reportBucket("https://f.example/reports/1"))
		return err
	})
}

// TestMigrateCounts counts the cases of a store written before the counts,
// stopping after one page as a crash would, going on after a reopen with
// cases saved in between, and doing nothing once complete.
func TestMigrateCounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := store.Open(path, store.Options{NoSync: true, DataKey: testDataKey})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	writeUncounted(t, db, rng, 23)
	if n, err := migrateCounts(ctx, db, 5, 1); err != nil || n != 5 {
		t.Fatalf("first page counted %d cases (%v), want 5", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(path, store.Options{NoSync: true, DataKey: testDataKey})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A case counted in the first page changes state, one not reached yet
	// is saved (and so counted) before the migration reaches it.
	update(t, db, func(tx *store.Tx) error {
		for _, id := range []string{"https://v.example/cases/old-000", "https://v.example/cases/old-020"} {
			c, err := loadCase(&tx.ReadTx, id)
			if err != nil {
				return err
			}
			c.EM, c.PXA = cvdstate.EMExited, cvdstate.PXA(7)
			if err := saveCase(tx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if n, err := migrateCounts(ctx, db, 5, 0); err != nil || n != 23-5-1 {
		t.Fatalf("the rest counted %d cases (%v), want %d", n, err, 23-5-1)
	}
	checkCaseCounts(t, db, "after the migration")
	if n, err := MigrateCounts(ctx, db); err != nil || n != 0 {
		t.Fatalf("a second MigrateCounts counted %d (%v), want 0", n, err)
	}
	checkCaseCounts(t, db, "after a second migration")
}

// caseCrashEnv marks the child process of TestCountsSurviveSigkill.
const caseCrashEnv = "CASES_COUNT_CRASH_CHILD"

// TestCountsSurviveSigkill kills a process that changes cases with real
// fsync, then checks that the reopened store's counts equal a recount.
func TestCountsSurviveSigkill(t *testing.T) {
	if path, ok := crashtest.Child(caseCrashEnv); ok {
		caseCrashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("crash test runs a child process")
	}
	path := filepath.Join(t.TempDir(), "vultron.db")
	crashtest.Kill(t, "TestCountsSurviveSigkill", caseCrashEnv, path, 200)
	db := openCountedStore(t, path)
	defer db.Close()
	checkCaseCounts(t, db, "after SIGKILL")
	if got := recount(t, db); len(got) < 2 {
		t.Errorf("the child left cases in %d states: the test exercised too little", len(got))
	}
}

// caseCrashChild changes cases until it is killed, with the store's real
// fsync and its group committer (writes from several goroutines).
func caseCrashChild(t *testing.T, path string) {
	db, err := store.Open(path, store.Options{DataKey: testDataKey})
	if err != nil {
		t.Fatalf("child open: %v", err)
	}
	if _, err := MigrateCounts(context.Background(), db); err != nil {
		t.Fatalf("child: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	done := make(chan struct{})
	lines := make(chan string, 64)
	for w := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), 4))
			for i := 0; time.Now().Before(deadline); i++ {
				err := db.Update(context.Background(), func(tx *store.Tx) error {
					c := &Case{ID: fmt.Sprintf("https://v.example/cases/%d-%d", w, rng.IntN(20))}
					if old, err := loadCase(&tx.ReadTx, c.ID); err != nil {
						return err
					} else if old != nil {
						c = old
					}
					randomState(rng, c)
					return saveCase(tx, c)
				})
				if err != nil {
					fmt.Fprintf(os.Stderr, "step: %v\n", err)
					os.Exit(2)
				}
				lines <- fmt.Sprintf("step %d %d", w, i)
			}
			done <- struct{}{}
		}()
	}
	for finished := 0; finished < 4; {
		select {
		case l := <-lines:
			if _, err := os.Stdout.WriteString(l + "\n"); err != nil {
				os.Exit(3)
			}
		case <-done:
			finished++
		}
	}
	os.Exit(4) // the parent should have killed the child long before
}
