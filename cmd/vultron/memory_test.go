package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneMemory sets the collector of a serving node and leaves what the
// operator set through GOGC and GOMEMLIMIT alone.
func TestTuneMemory(t *testing.T) {
	prevPercent, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	tests := []struct {
		name        string
		gogc, limit string // the environment
		wantPercent int
		wantFrom    string
		wantLimit   func(int64) bool
	}{
		{"defaults", "", "", 400, "--gc-percent", func(l int64) bool { return l > 0 && l < math.MaxInt64 }},
		{"operator's GOGC and GOMEMLIMIT", "150", "123456789", 150, "GOGC", func(l int64) bool { return l == 123456789 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			t.Setenv("GOMEMLIMIT", tt.limit)
			// What the runtime would have read from the environment at start.
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			if tt.gogc != "" {
				debug.SetGCPercent(150)
				debug.SetMemoryLimit(123456789)
			}
			got, err := tuneMemory(400)
			if err != nil {
				t.Fatal(err)
			}
			if got.GCPercent != tt.wantPercent || got.From != tt.wantFrom || !tt.wantLimit(got.Limit) {
				t.Errorf("tuneMemory(400) = %+v, want GC percent %d from %s and another limit", got, tt.wantPercent, tt.wantFrom)
			}
			if p := debug.SetGCPercent(-1); p != tt.wantPercent {
				t.Errorf("the runtime's GC percent is %d, want %d", p, tt.wantPercent)
			}
			if l := debug.SetMemoryLimit(-1); l != got.Limit {
				t.Errorf("the runtime's memory limit is %d, tuneMemory reported %d", l, got.Limit)
			}
		})
	}
}
