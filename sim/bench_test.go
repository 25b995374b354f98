package sim

import (
	"context"
	"testing"
)

// BenchmarkSimulate20000 measures one run of 20,000 cases, the size
// issue 19 asks to finish in under a minute: the random policy, and the
// shipped fix-first policy, whose cases take more steps (embargo
// negotiation, people's delays, world events).
func BenchmarkSimulate20000(b *testing.B) {
	for _, tc := range []struct {
		name   string
		policy string
	}{{"random", ""}, {"fix-first", "fix-first.yaml"}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := Config{Orgs: 30, Cases: 20000, Seed: 1}
			if tc.policy != "" {
				cfg.Policy = examplePolicyB(b, tc.policy)
			}
			for b.Loop() {
				res, err := Run(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				if res.Complete == 0 {
					b.Fatal("no case completed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/20000*1000, "µs/case")
		})
	}
}
