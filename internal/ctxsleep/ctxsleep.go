// Package ctxsleep waits for a time or a context, whichever ends first. It
// is the one way the node's background loops pause between rounds.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or not at all when d is not positive, and reports whether
// ctx is still live: false when ctx ended first (or had ended already).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
