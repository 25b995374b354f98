package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Shares of the memory available that the soft memory limit takes: most
// of a container's own limit, half of a machine's memory (which the node
// shares with its database, its proxy and the rest).
const (
	cgroupMemoryShare = 0.9
	systemMemoryShare = 0.5
)

// memorySettings is how tuneMemory left the garbage collector.
type memorySettings struct {
	GCPercent int    // the heap growth that starts a collection
	From      string // where GCPercent came from: "GOGC" or "--gc-percent"
	Limit     int64  // the soft memory limit in bytes (math.MaxInt64: none)
}

// tuneMemory sets the garbage collector of a serving node, unless the
// operator set it through the Go runtime's own environment variables
// (GOGC, GOMEMLIMIT), which win: a collection starts when the heap has
// grown by gcPercent, and the soft memory limit is a share of the
// container's memory limit, or of the machine's memory when there is none
// (github.com/KimMachineGun/automemlimit reads both). Near that limit the
// runtime collects more often, whatever gcPercent says.
func tuneMemory(gcPercent int) (memorySettings, error) {
	s := memorySettings{GCPercent: gcPercent, From: "--gc-percent"}
	if os.Getenv("GOGC") != "" {
		// The runtime read GOGC at start; reading its setting back means
		// setting it, so it is put back at once.
		s.GCPercent, s.From = debug.SetGCPercent(-1), "GOGC"
		debug.SetGCPercent(s.GCPercent)
	} else {
		debug.SetGCPercent(gcPercent)
	}
	limit, err := memlimit.Set(
		memlimit.WithRatio(1),
		memlimit.WithProvider(memlimit.ApplyFallback(
			memlimit.ApplyRatio(memlimit.FromCgroup, cgroupMemoryShare),
			memlimit.ApplyRatio(memlimit.FromSystem, systemMemoryShare))),
	)
	if err != nil {
		return s, fmt.Errorf("set the soft memory limit: %w", err)
	}
	s.Limit = limit
	return s, nil
}

// limitText is a memory limit for the log: bytes, or "none".
func limitText(limit int64) string {
	if limit == math.MaxInt64 {
		return "none"
	}
	return fmt.Sprintf("%d", limit)
}
