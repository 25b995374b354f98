package accounts

import (
	"strings"
	"testing"
	"time"
)

// TestThrottleSaysTheWaitInWords: the refusal of a throttled login says
// how long to wait as a person reads it: seconds under a minute, minutes
// (rounded up) beyond, one of each in the singular.
func TestThrottleSaysTheWaitInWords(t *testing.T) {
	for _, tc := range []struct {
		over int // failures past the free ones
		want string
	}{
		{1, "try again in 1 second"},
		{2, "try again in 2 seconds"},
		{6, "try again in 32 seconds"},
		{7, "try again in 2 minutes"},
		{30, "try again in 15 minutes"},
	} {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		th, err := newThrottle(func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		for range freeNameFailures + tc.over {
			th.fail("alice", "")
		}
		err = th.check("alice", "")
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("after %d failures past the free ones: %v, want it to end with %q", tc.over, err, tc.want)
		}
	}
}
