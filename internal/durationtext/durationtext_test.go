package durationtext

import (
	"testing"
	"time"
)

func TestTyped(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Minute: "1m", 90 * time.Second: "1m30s", 90 * time.Minute: "1h30m",
		2 * time.Hour: "2h", 36 * time.Hour: "36h", 50 * time.Millisecond: "50ms",
	} {
		if got := Typed(d); got != want {
			t.Errorf("Typed(%v) = %q, want %q", d, got, want)
		}
	}
}
