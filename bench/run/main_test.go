package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestParseParts(t *testing.T) {
	for _, tc := range []struct {
		list    string
		want    []string
		wantErr string
	}{
		{"inbox", []string{"inbox"}, ""},
		{"inbox, footprint", []string{"footprint", "inbox"}, ""},
		{strings.Join(allParts(), ","), []string{"backup", "bigcase", "fanout", "footprint", "growth", "inbox", "postgres"}, ""},
		{"inbox,limits", nil, `unknown part "limits"`},
		{"", nil, `unknown part ""`},
	} {
		got, err := parseParts(tc.list)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseParts(%q) = %v, %v; want an error saying %s", tc.list, got, err, tc.wantErr)
			}
			continue
		}
		var names []string
		for p := range got {
			names = append(names, p)
		}
		slices.Sort(names)
		if err != nil || !slices.Equal(names, tc.want) {
			t.Errorf("parseParts(%q) = %v, %v; want %v", tc.list, names, err, tc.want)
		}
	}
}

// TestSaveMergesParts checks that a run of the inbox part alone replaces
// the inbox figures of the results already written (the limit, the
// node's, the peers' and their ratios) and keeps every other part's, with
// the date each part was measured.
func TestSaveMergesParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	old := Results{Date: "2026-12-03T07:31:12Z", Machine: "old machine", Figures: []*Figure{
		{Name: "limit activities/s, 1 workers", Group: "inbox", Median: 1},
		{Name: "inbox accepted/s, 1 senders", Group: "inbox", Median: 2},
		{Name: "Fedify accepted/s, 1 senders", Group: "fedify", Median: 3},
		{Name: "ours/Fedify, 1 senders", Group: "ratio", Median: 4},
		{Name: "RSA-2048 signs/s, all cores", Group: "micro", Median: 5},
		{Name: "fan-out N=200 s-all-delivered", Group: "fanout", Median: 6},
		{Name: "big case 5000 entries s-apply", Group: "bigcase", Median: 7},
		{Name: "big case 5000 entries node RSS MiB", Group: "bigcase-rss", Median: 8},
		{Name: "idle RSS MiB", Group: "footprint", Median: 9},
	}}
	writeResults(t, path, old)
	res = Results{Date: "2026-12-06T10:00:00Z", Figures: []*Figure{
		{Name: "limit activities/s, 1 workers", Group: "inbox", Median: 10},
		{Name: "inbox accepted/s, 1 senders", Group: "inbox", Median: 20},
		{Name: "Fedify inbox accepted/s, 1 senders", Group: "fedify", Median: 30},
		{Name: "interop peer accepted/s, 1 senders", Group: "interop-peer", Median: 31},
		{Name: "ours/Fedify inbox, 1 senders", Group: "ratio", Median: 40},
	}}
	t.Cleanup(func() { res = Results{} })
	save(path, map[string]bool{"inbox": true})

	got := readResults(t, path)
	medians := map[string]float64{}
	for _, f := range got.Figures {
		if _, dup := medians[f.Name]; dup {
			t.Errorf("figure %q twice", f.Name)
		}
		medians[f.Name] = f.Median
	}
	want := map[string]float64{
		"limit activities/s, 1 workers": 10, "inbox accepted/s, 1 senders": 20, "Fedify inbox accepted/s, 1 senders": 30,
		"interop peer accepted/s, 1 senders": 31, "ours/Fedify inbox, 1 senders": 40,
		"RSA-2048 signs/s, all cores": 5, "fan-out N=200 s-all-delivered": 6, "big case 5000 entries s-apply": 7,
		"big case 5000 entries node RSS MiB": 8, "idle RSS MiB": 9,
	}
	for name, m := range want {
		if got, ok := medians[name]; !ok || got != m {
			t.Errorf("%s: %v (present %v), want %v", name, got, ok, m)
		}
	}
	if len(medians) != len(want) {
		t.Errorf("%d figures, want %d (the old inbox figures replaced): %v", len(medians), len(want), medians)
	}
	wantParts := map[string]string{"inbox": res.Date, "fanout": old.Date, "bigcase": old.Date, "footprint": old.Date}
	for p, d := range wantParts {
		if got.Parts[p] != d {
			t.Errorf("part %s measured %q, want %q", p, got.Parts[p], d)
		}
	}
}

// TestMergeKeepsEveryFigureOfAnotherPart runs one part (backup) over
// results that hold a figure of every group the other parts make: each of
// those is kept, the limit inbox's and its ratio included.
func TestMergeKeepsEveryFigureOfAnotherPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	old := Results{Date: "2026-12-07T03:44:26Z", Machine: "old machine", Figures: []*Figure{
		{Name: "limit activities/s, 16 workers", Group: "inbox"},
		{Name: "inbox accepted/s, 16 senders", Group: "inbox"},
		{Name: "limit inbox accepted/s, 16 senders", Group: "limit-inbox"},
		{Name: "Fedify inbox accepted/s, 16 senders", Group: "fedify"},
		{Name: "interop peer accepted/s, 16 senders", Group: "interop-peer"},
		{Name: "inbox/limit, 16 senders", Group: "ratio"},
		{Name: "inbox/limit inbox, 16 senders", Group: "ratio"},
		{Name: "limit inbox/limit, 16 senders", Group: "ratio"},
		{Name: "inbox acknowledged/acknowledged limit, 16 senders", Group: "ratio"},
		{Name: "ours/Fedify inbox, 16 senders", Group: "ratio"},
		{Name: "fan-out N=200 s-all-delivered", Group: "fanout"},
		{Name: "big case 5000 entries s-apply", Group: "bigcase"},
		{Name: "idle RSS MiB", Group: "footprint"},
	}}
	writeResults(t, path, old)
	res = Results{Date: "2026-12-07T09:00:00Z", Figures: []*Figure{
		{Name: "backup of a 20 MB store under writes backup_MB/s", Group: "backup"},
	}}
	t.Cleanup(func() { res = Results{} })
	save(path, map[string]bool{"backup": true})
	got := readResults(t, path)
	have := map[string]bool{}
	for _, f := range got.Figures {
		have[f.Name] = true
	}
	for _, f := range append(old.Figures, res.Figures...) {
		if !have[f.Name] {
			t.Errorf("figure %q (group %s) was dropped by the merge", f.Name, f.Group)
		}
	}
}

// writeResults writes r to path as save does.
func writeResults(t *testing.T, path string, r Results) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readResults reads the results save wrote to path.
func readResults(t *testing.T, path string) Results {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Results
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestCounterReadsEveryValueTheExpositionWrites: a counter whose value is
// small, as the seconds the writes of a process waited for the writer
// lock are before many writes, is written with a negative exponent
// (1.5e-05); counter reads it, as it reads a large one (1.2e+06), rather
// than fail the run with "no" such counter.
func TestCounterReadsEveryValueTheExpositionWrites(t *testing.T) {
	for _, v := range []float64{0, 1.5e-05, 0.25, 3, 1.2e+06} {
		reg := prometheus.NewRegistry()
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vultron_store_writer_lock_wait_seconds_total", Help: "h"})
		reg.MustRegister(c)
		c.Add(v)
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		got, err := (&node{url: srv.URL}).counter("vultron_store_writer_lock_wait_seconds_total")
		srv.Close()
		if err != nil || got != v {
			t.Errorf("counter of a counter at %g = %g, %v", v, got, err)
		}
	}
}

// TestStoreCountersScrapeEachProcessOnce: the counters read before and
// after a load come from one scrape of each process, since a scrape is
// itself a read of the store, whose round trips the figures count.
func TestStoreCountersScrapeEachProcessOnce(t *testing.T) {
	var scrapes atomic.Int32
	body := "vultron_store_round_trips_total 120\nvultron_store_writer_locks_total 40\nvultron_store_writer_lock_wait_seconds_total 1.5e-05\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes.Add(1)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	s := &sharedNode{procs: []*node{{url: srv.URL}, {url: srv.URL}}}
	got, err := s.storeCounters()
	if err != nil {
		t.Fatal(err)
	}
	if want := (storeCounters{roundTrips: 240, writerLocks: 80, writerLockWait: 3e-05}); got != want {
		t.Errorf("storeCounters = %+v, want %+v", got, want)
	}
	if n := scrapes.Load(); n != 2 {
		t.Errorf("%d scrapes of two processes, want 2", n)
	}
}
