package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/bench"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/store"
)

// The postgres and growth parts measure the node on PostgreSQL 15 the way
// the other parts measure it on bbolt: a throw-away server of the
// machine's binaries (internal/pgtest) on 127.0.0.1 with its default
// durability (fsync and synchronous commit on), one fresh database per
// measured store, dropped with the server at the end.

// pgSenders are the concurrencies the PostgreSQL inbox is measured at.
func pgSenders() []int { return []int{16, 64} }

// startPostgres starts the throw-away server, or says why it cannot.
func startPostgres() (*pgtest.Server, error) {
	srv, err := pgtest.StartDurable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("start a throw-away PostgreSQL (make pg-deps installs its binaries): %w", err)
	}
	return srv, nil
}

// sharedNode is the processes of one node on one PostgreSQL database
// behind one public URL: the first process's.
type sharedNode struct{ procs []*node }

// startShared starts procs processes of one node on the database at
// storeURL, one after another (the first creates the actor keys and
// tokens and shares them through the store; the others take them), each
// with its own data directory under dir and the first's data key.
func startShared(bin, dir, storeURL string, procs int) (*sharedNode, error) {
	s := &sharedNode{}
	for i := range procs {
		o := nodeOpts{dir: filepath.Join(dir, fmt.Sprintf("p%d", i)), store: storeURL}
		if i > 0 {
			o.publicURL = s.procs[0].url
			o.dataKeyFile = filepath.Join(s.procs[0].dir, "data-key")
		}
		n, err := startNodeWith(bin, o)
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("process %d: %w", i+1, err)
		}
		s.procs = append(s.procs, n)
	}
	return s, nil
}

func (s *sharedNode) stop() {
	for _, n := range s.procs {
		n.stop()
	}
}

// storeCounters is what the processes' /metrics say of their store,
// summed over the processes.
type storeCounters struct {
	roundTrips, writerLocks, writerLockWait float64
}

// storeCounters sums the processes' vultron_store_round_trips_total,
// vultron_store_writer_locks_total and
// vultron_store_writer_lock_wait_seconds_total, read from one scrape of
// each (a scrape reads the store too).
func (s *sharedNode) storeCounters() (storeCounters, error) {
	var sum storeCounters
	for _, n := range s.procs {
		v, err := n.counters("vultron_store_round_trips_total", "vultron_store_writer_locks_total", "vultron_store_writer_lock_wait_seconds_total")
		if err != nil {
			return storeCounters{}, err
		}
		sum.roundTrips += v[0]
		sum.writerLocks += v[1]
		sum.writerLockWait += v[2]
	}
	return sum, nil
}

// via is the load generator's -via: every process's address.
func (s *sharedNode) via() []string {
	var a []string
	for _, n := range s.procs {
		a = append(a, strings.TrimPrefix(n.url, "http://"))
	}
	return []string{"-via", strings.Join(a, ",")}
}

// postgresPart measures, on PostgreSQL: the inbox of one node process and
// of two processes on one database (accepted, and accepted and
// acknowledged, per second at 16 and 64 senders, and two over one); the
// fan-out of one case event to 2,000 inboxes; and the big case (2,000
// participants, 30,000 entries) written, recorded per entry and viewed.
func postgresPart(tmp, bin string, runs int, quick bool) error {
	srv, err := startPostgres()
	if err != nil {
		return err
	}
	defer srv.Stop()
	ctx := context.Background()
	count := 2000
	if quick {
		count = 300
	}
	type key struct{ procs, senders int }
	rate, acked, trips, lockWait := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	cmds := map[key]string{}
	for r := range runs {
		for _, procs := range []int{1, 2} {
			name := fmt.Sprintf("inbox_%d_%d", r, procs)
			u, err := srv.CreateDatabase(ctx, name)
			if err != nil {
				return err
			}
			sn, err := startShared(bin, filepath.Join(tmp, name), u, procs)
			if err != nil {
				return err
			}
			for _, s := range pgSenders() {
				before, err := sn.storeCounters()
				if err != nil {
					sn.stop()
					return err
				}
				lr, command, err := loadgen(bin, sn.procs[0].url+"/actors/vendor/inbox", s, count, true, "report", sn.via()...)
				if err != nil {
					sn.stop()
					return err
				}
				after, err := sn.storeCounters()
				if err != nil {
					sn.stop()
					return err
				}
				k := key{procs, s}
				trips[k] = append(trips[k], (after.roundTrips-before.roundTrips)/float64(lr.Accepted))
				if locks := after.writerLocks - before.writerLocks; locks > 0 {
					lockWait[k] = append(lockWait[k], 1000*(after.writerLockWait-before.writerLockWait)/locks)
				}
				rate[k] = append(rate[k], lr.PerSecond)
				acked[k] = append(acked[k], float64(lr.Accepted)/(lr.Seconds+lr.DrainSeconds))
				cmds[k] = fmt.Sprintf("%d × vultron serve --store postgres://…/%s --data D_i --public-url http://127.0.0.1:P1 (PostgreSQL 15, fsync on); ", procs, name) +
					redactPorts(command)
			}
			sn.stop()
			if err := srv.DropDatabase(ctx, name); err != nil {
				return err
			}
		}
	}
	for _, s := range pgSenders() {
		for _, procs := range []int{1, 2} {
			k := key{procs, s}
			record("pg-inbox", fmt.Sprintf("pg inbox accepted/s, %d senders, %d processes", s, procs), float64(s), "activities/s", rate[k], cmds[k])
			record("pg-inbox", fmt.Sprintf("pg inbox accepted and acknowledged/s, %d senders, %d processes", s, procs), float64(s), "activities/s", acked[k],
				cmds[k]+"; accepted / (timed phase + drain until every RK reached its sender)")
			record("pg-inbox", fmt.Sprintf("pg round trips per accepted Offer, %d senders, %d processes", s, procs), float64(s), "requests", trips[k],
				cmds[k]+"; vultron_store_round_trips_total of every process's /metrics before and after, over accepted: everything the node asked the database during the run (replies, deliveries and timers included)")
			record("pg-inbox", fmt.Sprintf("pg writer lock wait per write transaction, %d senders, %d processes", s, procs), float64(s), "ms", lockWait[k],
				cmds[k]+"; vultron_store_writer_lock_wait_seconds_total over vultron_store_writer_locks_total, summed over the processes' /metrics before and after: how long a write transaction waited for the writer lock, as the database measured")
		}
		ratio(fmt.Sprintf("pg two processes/one, %d senders", s), fmt.Sprintf("pg inbox accepted/s, %d senders, 2 processes", s),
			fmt.Sprintf("pg inbox accepted/s, %d senders, 1 processes", s))
	}
	fmt.Println()

	// Fan-out to 2,000 inboxes, signed with Ed25519 as to Vultron nodes.
	n := 2000
	if quick {
		n = 200
	}
	u, err := srv.CreateDatabase(ctx, "fanout")
	if err != nil {
		return err
	}
	fr, err := fanoutRuns(bench.FanoutConfig{Store: u, Workers: 8, Ed25519: true}, n, runs)
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("bench.NewFanoutWith(FanoutConfig{Store: postgres://…/fanout, Workers: 8, Ed25519: true}).Run(%d) after one warm run (go run ./bench/run -parts postgres)", n)
	record("pg-fanout", fmt.Sprintf("pg fan-out N=%d deliveries/s", n), float64(n), "deliveries/s", fr, cmd)
	secs := make([]float64, len(fr))
	for i, v := range fr {
		secs[i] = float64(n) / v
	}
	record("pg-fanout", fmt.Sprintf("pg fan-out N=%d seconds", n), float64(n), "s", secs, cmd)
	fmt.Println()

	// The big case.
	entries := 30000
	if quick {
		entries = 5000
	}
	return pgBigCase(srv, tmp, bin, runs, entries)
}

var portRe = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// redactPorts replaces the loopback ports of a command with P.
func redactPorts(command string) string {
	return portRe.ReplaceAllString(command, "127.0.0.1:P")
}

// fanoutRuns runs one warm fan-out to n and then runs measured ones on a
// Fanout of cfg, and returns their deliveries per second.
func fanoutRuns(cfg bench.FanoutConfig, n, runs int) ([]float64, error) {
	f, err := bench.NewFanoutWith(cfg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Run(n, 5*time.Minute); err != nil {
		return nil, err
	}
	var out []float64
	for range runs {
		r, err := f.Run(n, 5*time.Minute)
		if err != nil {
			return nil, err
		}
		if r.Refused > 0 {
			return nil, fmt.Errorf("fan-out: the sink refused %d deliveries", r.Refused)
		}
		out = append(out, r.PerSecond)
	}
	return out, nil
}

// prepareStore writes what fill stores into a new node data directory's
// store before the node first starts (the node adds its actors and keys):
// the store at storeURL, or the bbolt file in dir when storeURL is "",
// sealed with dir's data key as the node will open it, so that the node
// needs no migration at its first start.
func prepareStore(dir, storeURL string, fill func(*store.DB) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keys, err := store.LoadDataKeys(dir, "", "", true)
	if err != nil {
		return err
	}
	if storeURL == "" {
		storeURL = "bolt:" + filepath.Join(dir, "vultron.db")
	}
	db, err := store.OpenURL(context.Background(), storeURL, store.Options{NoSync: true, DataKey: keys.Current})
	if err != nil {
		return err
	}
	if err := fill(db); err != nil {
		db.Close()
		return err
	}
	// Every case is written in the current layout; marking the store so
	// spares the node the scan for older records at its first start.
	if _, err := cases.MigrateNotes(context.Background(), db); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// pgBigCase writes the big case into a PostgreSQL database through the
// store API, starts a node process on it, and times the case's view and
// the dashboard's page as bigCaseNode does on bbolt; it also times the
// write itself and a replica's record of one more entry.
func pgBigCase(srv *pgtest.Server, tmp, bin string, runs, entries int) error {
	ctx := context.Background()
	var writes, views50, views95, pages50, pages95, recs, viewTrips, pageTrips []float64
	var cmd string
	for r := range runs {
		name := fmt.Sprintf("big_%d", r)
		u, err := srv.CreateDatabase(ctx, name)
		if err != nil {
			return err
		}
		dir := filepath.Join(tmp, name)
		bc, err := bench.BuildCase("http://127.0.0.1:7001", "big", 2000, entries)
		if err != nil {
			return err
		}
		c, rep, err := bc.Apply()
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := prepareStore(dir, u, func(db *store.DB) error { return bc.Store(ctx, db, c, rep) }); err != nil {
			return err
		}
		writes = append(writes, time.Since(t0).Seconds())
		keys, err := store.LoadDataKeys(dir, "", "", false)
		if err != nil {
			return err
		}
		db, err := store.OpenURL(ctx, u, store.Options{DataKey: keys.Current})
		if err != nil {
			return err
		}
		rec, err := bench.RecordCost(ctx, db, bc, c.NoteCount)
		db.Close()
		if err != nil {
			return err
		}
		recs = append(recs, float64(rec.Microseconds())/1000)
		n, err := startNodeWith(bin, nodeOpts{dir: dir, store: u})
		if err != nil {
			return err
		}
		cv, err := viewCase(n, bc.CaseID)
		n.stop()
		if err != nil {
			return err
		}
		views50, views95, pages50, pages95 = append(views50, cv.v50), append(views95, cv.v95), append(pages50, cv.p50), append(pages95, cv.p95)
		viewTrips, pageTrips = append(viewTrips, cv.viewTrips), append(pageTrips, cv.pageTrips)
		if err := srv.DropDatabase(ctx, name); err != nil {
			return err
		}
		cmd = fmt.Sprintf("the case of bench.BuildCase(…, 2000, %d) written with BigCase.Store into postgres://…/%s, then vultron serve --store on it; 40 × GET /api/cases/{id} and /ui/cases/{id} (go run ./bench/run -parts postgres)", entries, name)
	}
	e := float64(entries)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: written (s)", entries), e, "s", writes, cmd)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: record one entry (ms)", entries), e, "ms", recs, cmd)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: GET p50 ms", entries), e, "ms", views50, cmd)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: GET p95 ms", entries), e, "ms", views95, cmd)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: page p50 ms", entries), e, "ms", pages50, cmd)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: page p95 ms", entries), e, "ms", pages95, cmd)
	tripsCmd := cmd + "; vultron_store_round_trips_total of /metrics before and after the 40 requests, over 40 (the node's background work and one scrape included)"
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: round trips per GET", entries), e, "requests", viewTrips, tripsCmd)
	record("pg-bigcase", fmt.Sprintf("pg big case %d entries: round trips per page", entries), e, "requests", pageTrips, tripsCmd)
	fmt.Println()
	return nil
}

// caseViews is what viewCase measured: p50 and p95 of the case's view (API)
// and of its dashboard page, in ms, and, on PostgreSQL, the round trips
// each request cost the node on average (0 on bbolt).
type caseViews struct {
	v50, v95, p50, p95   float64
	viewTrips, pageTrips float64
}

// viewCase requests the case's view (API) and the dashboard's case page 40
// times each.
func viewCase(n *node, caseID string) (caseViews, error) {
	var cv caseViews
	// trips runs get 40 times and returns the round trips per request,
	// when the node has a database to ask.
	trips := func(get func() error) (float64, error) {
		before, tripsErr := n.counter("vultron_store_round_trips_total")
		for range 40 {
			if err := get(); err != nil {
				return 0, err
			}
		}
		if tripsErr != nil {
			return 0, nil // bbolt: no round trips to count
		}
		after, err := n.counter("vultron_store_round_trips_total")
		if err != nil {
			return 0, err
		}
		return (after - before) / 40, nil
	}
	path := "/api/cases/" + url.PathEscape(caseID)
	var lat []float64
	var err error
	cv.viewTrips, err = trips(func() error {
		t0 := time.Now()
		st, _, err := n.get(path)
		if err != nil || st != http.StatusOK {
			return fmt.Errorf("GET %s: %d %v", path, st, err)
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		return nil
	})
	if err != nil {
		return cv, err
	}
	web, err := n.dashboard()
	if err != nil {
		return cv, err
	}
	page := "/ui/cases/" + url.PathEscape(caseID)
	var ulat []float64
	cv.pageTrips, err = trips(func() error {
		t0 := time.Now()
		resp, err := web.Get(n.url + page)
		if err != nil {
			return fmt.Errorf("GET %s: %w", page, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %v", page, resp.StatusCode, err)
		}
		ulat = append(ulat, float64(time.Since(t0).Microseconds())/1000)
		return nil
	})
	if err != nil {
		return cv, err
	}
	slices.Sort(lat)
	slices.Sort(ulat)
	q := func(v []float64, p float64) float64 { return v[int(p*float64(len(v)-1))] }
	cv.v50, cv.v95, cv.p50, cv.p95 = q(lat, 0.5), q(lat, 0.95), q(ulat, 0.5), q(ulat, 0.95)
	return cv, nil
}

// listCases requests the first page of the case list 21 times and returns
// the first request's time (the first after the node's start, whose reads
// fill no cache yet) and the p50 of the others, in ms.
func listCases(n *node) (first, warm float64, err error) {
	var lat []float64
	for i := range 21 {
		t0 := time.Now()
		if st, _, err := n.get("/api/cases?limit=100"); err != nil || st != http.StatusOK {
			return 0, 0, fmt.Errorf("GET /api/cases: %d %v", st, err)
		}
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if i == 0 {
			first = ms
			continue
		}
		lat = append(lat, ms)
	}
	slices.Sort(lat)
	return first, lat[len(lat)/2], nil
}

// growthSizes are the store sizes, in cases, the growth part measures at.
func growthSizes(quick bool) []int {
	if quick {
		return []int{0, 1000}
	}
	return []int{0, 10000, 100000}
}

// growthPart measures how the node's figures grow with the store: on each
// engine one store is filled, through the store API, with small cases (3
// participants, 5 ledger entries each) up to each size in turn, and at
// each size a node process on it takes the inbox load at 16 and 64
// senders, lists its cases and views one, and then (the process stopped)
// one case event is fanned out to 2,000 inboxes from that store.
func growthPart(tmp, bin string, runs int, quick bool) error {
	srv, err := startPostgres()
	if err != nil {
		return err
	}
	defer srv.Stop()
	ctx := context.Background()
	count, fan := 2000, 2000
	if quick {
		count, fan = 300, 200
	}
	for _, engine := range []string{"bbolt", "pg"} {
		dir := filepath.Join(tmp, "growth-"+engine)
		storeURL := ""
		if engine == "pg" {
			if storeURL, err = srv.CreateDatabase(ctx, "growth"); err != nil {
				return err
			}
		}
		have := 0
		for _, size := range growthSizes(quick) {
			t0 := time.Now()
			from := have
			if err := prepareStore(dir, storeURL, func(db *store.DB) error {
				return bench.StoreCases(ctx, db, "http://127.0.0.1:7001", from, size, 3, 5)
			}); err != nil {
				return err
			}
			if size > have {
				fmt.Printf("  %s: seeded cases %d to %d in %.1f s\n", engine, have, size, time.Since(t0).Seconds())
			}
			have = size
			s := float64(size)
			seed := fmt.Sprintf("%s store seeded through the store API with %d cases (bench.StoreCases, 3 participants, 5 entries)", engine, size)
			for range runs {
				n, err := startNodeWith(bin, nodeOpts{dir: dir, store: storeURL})
				if err != nil {
					return err
				}
				for _, snd := range pgSenders() {
					lr, command, err := loadgen(bin, n.url+"/actors/vendor/inbox", snd, count, true, "report")
					if err != nil {
						n.stop()
						return err
					}
					name := fmt.Sprintf("growth %s inbox accepted/s, %d senders, %d cases", engine, snd, size)
					addRun("growth-inbox", name, s, "activities/s", lr.PerSecond, seed+"; vultron serve on it; "+redactPorts(command))
				}
				caseID := "http://127.0.0.1:7001/cases/c000000"
				if size > 0 {
					cv, err := viewCase(n, caseID)
					if err != nil {
						n.stop()
						return err
					}
					addRun("growth-view", fmt.Sprintf("growth %s case view p50 ms, %d cases", engine, size), s, "ms", cv.v50, seed+"; 40 × GET /api/cases/{id}")
				}
				first, warm, err := listCases(n)
				if err != nil {
					n.stop()
					return err
				}
				addRun("growth-view", fmt.Sprintf("growth %s case list ms, %d cases", engine, size), s, "ms", first, seed+"; GET /api/cases?limit=100 (first page), the first request after the start")
				addRun("growth-view", fmt.Sprintf("growth %s case list warm p50 ms, %d cases", engine, size), s, "ms", warm, seed+"; GET /api/cases?limit=100 (first page), p50 of the 20 requests after the first")
				n.stop()
			}
			keys, err := store.LoadDataKeys(dir, "", "", false)
			if err != nil {
				return err
			}
			fr, err := fanoutRuns(bench.FanoutConfig{Dir: dir, File: "vultron.db", Store: storeURL, Workers: 8, Ed25519: true, DataKey: keys.Current}, fan, runs)
			if err != nil {
				return err
			}
			for _, v := range fr {
				addRun("growth-fanout", fmt.Sprintf("growth %s fan-out N=%d deliveries/s, %d cases", engine, fan, size), s, "deliveries/s", v,
					seed+fmt.Sprintf("; bench.NewFanoutWith on that store, Run(%d), Ed25519", fan))
			}
		}
	}
	return nil
}

// addRun adds one run's value to the figure name, creating (and printing)
// it at its first run.
func addRun(group, name string, size float64, unit string, v float64, command string) {
	if f := find(name); f != nil {
		f.Runs = append(f.Runs, v)
		f.Median = median(f.Runs)
		return
	}
	f := &Figure{Name: name, Group: group, Size: size, Unit: unit, Runs: []float64{v}, Median: v, Command: command}
	res.Figures = append(res.Figures, f)
	fmt.Printf("%-52s %12.4g %-14s\n    $ %s\n", name, v, unit, command)
}
