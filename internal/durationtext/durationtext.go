// Package durationtext writes a duration as a person types it in a flag
// or a setting ("1m", "2h", "1m30s", not "1m0s" or "2h0m0s"), for the
// messages that quote one. It is hand-written: time.Duration.String
// always writes the smaller units, and the few lines here are all the
// difference.
package durationtext

import (
	"strconv"
	"strings"
	"time"
)

// Typed writes d without its zero units: whole hours as "2h", whole
// minutes as "10m" or "1h30m", anything else as time.Duration.String
// does.
func Typed(d time.Duration) string {
	switch {
	case d == 0:
		return d.String()
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}
