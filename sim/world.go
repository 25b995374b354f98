package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/rules"
)

// Limits of a run.
const (
	// MaxCases is the most cases one run simulates.
	MaxCases = 10_000_000
	// MaxOrgs is the most organizations one run simulates.
	MaxOrgs = 100_000
	// MaxEventsPerCase bounds the steps of one case.
	MaxEventsPerCase = 1000
)

// Config is one run of the simulator.
type Config struct {
	Orgs  int
	Cases int
	// Policy is the rules every organization follows; nil means random.
	Policy *rules.Policy
	Seed   int64
	// Workers is how many cases are simulated at once; zero means one
	// per processor. The results do not depend on it.
	Workers int
	// Epoch is when the first vulnerability is found; zero means
	// 2026-01-01.
	Epoch time.Time
}

// org is one simulated organization: one node with one actor.
type org struct {
	name  string // the actor's local name
	base  string // the node's URL
	actor string // the actor's id
	roles cvdstate.RoleSet
}

// world is the organizations of a run and what every case shares.
type world struct {
	orgs                          []org
	finders, vendors, coordinator []int
	policy                        *rules.Policy
	timing                        rules.Simulation
	seed                          int64
	epoch                         time.Time
	byActor                       map[string]int
}

// newWorld makes n organizations, in turn a vendor (which also deploys its
// own fix), a finder and a coordinator.
func newWorld(cfg Config) (*world, error) {
	if cfg.Orgs < 2 || cfg.Orgs > MaxOrgs {
		return nil, fmt.Errorf("simulate: --orgs must be from 2 to %d, not %d", MaxOrgs, cfg.Orgs)
	}
	if cfg.Cases < 1 || cfg.Cases > MaxCases {
		return nil, fmt.Errorf("simulate: --cases must be from 1 to %d, not %d", MaxCases, cfg.Cases)
	}
	if cfg.Policy == nil && cfg.Orgs < 3 {
		return nil, errors.New("simulate: --policy random needs at least 3 organizations (a vendor, a finder and a coordinator), so that the public may learn of a vulnerability before its vendor")
	}
	w := &world{policy: cfg.Policy, seed: cfg.Seed, epoch: cfg.Epoch, byActor: map[string]int{}}
	if w.epoch.IsZero() {
		w.epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	w.timing = rules.DefaultSimulation()
	if cfg.Policy != nil {
		w.timing = cfg.Policy.Simulation
	}
	for i := range cfg.Orgs {
		o := org{base: fmt.Sprintf("https://org%d.sim.example", i)}
		switch i % 3 {
		case 0:
			o.name, o.roles = "vendor", cvdstate.Vendor|cvdstate.Deployer
			w.vendors = append(w.vendors, i)
		case 1:
			o.name, o.roles = "finder", cvdstate.Finder|cvdstate.Reporter
			w.finders = append(w.finders, i)
		case 2:
			o.name, o.roles = "coordinator", cvdstate.Coordinator
			w.coordinator = append(w.coordinator, i)
		}
		o.actor = o.base + "/actors/" + o.name
		w.byActor[o.actor] = i
		w.orgs = append(w.orgs, o)
	}
	return w, nil
}

// orgOf returns the organization whose node holds an actor (its Case
// Actors included), or -1.
func (w *world) orgOf(actor string) int {
	if i, ok := w.byActor[actor]; ok {
		return i
	}
	for i, o := range w.orgs {
		if strings.HasPrefix(actor, o.base+"/") {
			return i
		}
	}
	return -1
}

// DesideratumResult is one desideratum's outcome over the simulated cases.
type DesideratumResult struct {
	Desideratum cvdstate.Desideratum `json:"desideratum"`
	Met         int                  `json:"met"`
	// Fraction is the share of the cases that met it; Baseline the share
	// a uniform random walk meets; Skill (Fraction − Baseline) / (1 −
	// Baseline); StdErr the standard error of Fraction.
	Fraction float64 `json:"fraction"`
	Baseline float64 `json:"baseline"`
	Skill    float64 `json:"skill"`
	StdErr   float64 `json:"stdErr"`
}

// Result is what a run found.
type Result struct {
	Policy string `json:"policy"`
	Seed   int64  `json:"seed"`
	Orgs   int    `json:"orgs"`
	Cases  int    `json:"cases"`
	// Complete counts the cases whose history holds all six events; Cut
	// those stopped at MaxEventsPerCase.
	Complete   int                 `json:"complete"`
	Cut        int                 `json:"cut"`
	Desiderata []DesideratumResult `json:"-"`
	// Skill is the mean skill over the twelve desiderata.
	Skill float64 `json:"skill"`
	Load  Load    `json:"load"`
	// Histories counts the cases by the history they recorded.
	Histories map[string]int `json:"histories"`
}

// tally is what one worker counted.
type tally struct {
	met       []int
	complete  int
	cut       int
	load      Load
	histories map[string]int
}

// Run simulates cfg.Cases cases and assesses them.
func Run(ctx context.Context, cfg Config) (Result, error) {
	w, err := newWorld(cfg)
	if err != nil {
		return Result{}, err
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, cfg.Cases)
	ds := cvdstate.Desiderata()
	tallies := make([]tally, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := tally{met: make([]int, len(ds)), histories: map[string]int{}}
			for n := k; n < cfg.Cases; n += workers {
				if n%256 == k && ctx.Err() != nil {
					errs[k] = ctx.Err()
					return
				}
				s := newCaseSim(w, n)
				cut, err := s.run()
				if err != nil {
					errs[k] = fmt.Errorf("simulate case %d: %w", n, err)
					return
				}
				if cut {
					t.cut++
				}
				if s.history.Complete() {
					t.complete++
				}
				for i, d := range ds {
					if d.In(s.history) == cvdstate.Met {
						t.met[i]++
					}
				}
				t.histories[s.history.String()]++
				t.load.add(s.load)
			}
			tallies[k] = t
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	res := Result{Policy: "random", Seed: cfg.Seed, Orgs: cfg.Orgs, Cases: cfg.Cases, Histories: map[string]int{}}
	if cfg.Policy != nil {
		res.Policy = cfg.Policy.Name
	}
	met := make([]int, len(ds))
	for _, t := range tallies {
		for i := range met {
			met[i] += t.met[i]
		}
		res.Complete += t.complete
		res.Cut += t.cut
		res.Load.add(t.load)
		for h, n := range t.histories {
			res.Histories[h] += n
		}
	}
	baselines := cvdstate.Baselines()
	n := float64(cfg.Cases)
	for i, d := range ds {
		f := float64(met[i]) / n
		r := DesideratumResult{Desideratum: d, Met: met[i], Fraction: f, Baseline: baselines[i].Frequency,
			Skill: cvdstate.Skill(f, baselines[i].Frequency), StdErr: math.Sqrt(f * (1 - f) / n)}
		res.Desiderata = append(res.Desiderata, r)
		res.Skill += r.Skill / float64(len(ds))
	}
	return res, nil
}

// run simulates the case to its end; cut reports that it reached
// MaxEventsPerCase first.
func (s *caseSim) run() (cut bool, err error) {
	if s.w.policy == nil {
		return false, s.randomWalk()
	}
	return s.follow()
}
