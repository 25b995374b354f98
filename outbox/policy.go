package outbox

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy decides when a failed delivery is tried again and when the
// node gives up on it. The zero value is not useful; start from
// DefaultRetryPolicy.
type RetryPolicy struct {
	// First is the wait after the first failed attempt; each further
	// failure doubles it, up to Max.
	First time.Duration
	Max   time.Duration
	// Jitter spreads retries by up to this fraction of the wait, in both
	// directions, so a recovering peer is not hit by every node at once.
	Jitter float64
	// Horizon is how long after it was queued a delivery is still retried.
	// A delivery whose next attempt by the backoff would fall after the
	// horizon is moved to the dead letters instead; one that a peer's
	// Retry-After would postpone past it is tried a last time at it.
	Horizon time.Duration
	// MaxRetryAfter caps how long a peer's Retry-After can postpone a
	// delivery, so a hostile peer cannot park it past the horizon.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy retries for 7 days: 30 s after the first failure,
// doubling to a 6 h cap (about 30 attempts in all), ±20 % jitter.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		First:         30 * time.Second,
		Max:           6 * time.Hour,
		Jitter:        0.2,
		Horizon:       7 * 24 * time.Hour,
		MaxRetryAfter: 24 * time.Hour,
	}
}

// Backoff returns the wait after the given number of failed attempts
// (1 for the first failure), before jitter.
func (p RetryPolicy) Backoff(failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	wait := p.First
	for i := 1; i < failures; i++ {
		wait *= 2
		if wait >= p.Max {
			return p.Max
		}
	}
	if wait > p.Max {
		return p.Max
	}
	return wait
}

// Next returns when a delivery queued at firstQueued, that has now failed
// failures times, should be tried again, and false when the horizon has
// passed and it must go to the dead letters. retryAfter is the peer's
// Retry-After (zero when absent); it is honoured when longer than the
// backoff, up to MaxRetryAfter, and when it reaches past the horizon
// (where the backoff would not) the last attempt is at the horizon.
func (p RetryPolicy) Next(now, firstQueued time.Time, failures int, retryAfter time.Duration, rng *rand.Rand) (time.Time, bool) {
	wait := p.Backoff(failures)
	if p.Jitter > 0 && rng != nil {
		spread := float64(wait) * p.Jitter
		wait += time.Duration((rng.Float64()*2 - 1) * spread)
	}
	if retryAfter > p.MaxRetryAfter {
		retryAfter = p.MaxRetryAfter
	}
	end := firstQueued.Add(p.Horizon)
	backoff := now.Add(wait)
	if retryAfter > wait {
		wait = retryAfter
	}
	next := now.Add(wait)
	if next.After(end) {
		if next.After(backoff) && !backoff.After(end) {
			// The peer's Retry-After, not the backoff, reaches past the
			// horizon: the last attempt waits until the horizon.
			return end, true
		}
		return time.Time{}, false
	}
	return next, true
}

// MaxUnauthorizedAttempts bounds the attempts of a delivery that a peer
// answers 401: the peer may hold a stale copy of the signing actor's key
// (the key was rotated since it cached it) and fetch the current one when
// a signature fails, so a 401 is tried again with the policy's backoff
// until the delivery has failed this many times, and then dead-lettered
// at the second 401 in a row: a first 401 after failures of another kind
// (the peer was down, and may come back with an old cache) is tried again.
const MaxUnauthorizedAttempts = 5

// outcome is what one delivery attempt tells the queue to do.
type outcome int

const (
	delivered outcome = iota // the peer accepted the activity
	retry                    // a transient failure: try again later
	permanent                // the peer refused it for good: dead-letter it
	withdrawn                // no longer to be sent (DelivererConfig.Withdrawn): dead-letter it unsent
)

func (o outcome) String() string {
	switch o {
	case delivered:
		return "delivered"
	case retry:
		return "retry"
	case withdrawn:
		return "withdrawn"
	default:
		return "permanent"
	}
}

// errPermanent marks a delivery error that no retry can fix (the recipient
// does not exist, its document is malformed ...).
var errPermanent = errors.New("permanent delivery failure")

// classify maps an attempt's HTTP status (0 when no response arrived) and
// error to an outcome. 2xx is success; 408, 429 and 5xx are transient; any
// other 4xx means the peer will never accept this activity. Network errors
// are transient unless they wrap errPermanent.
func classify(status int, err error) outcome {
	switch {
	case err != nil && errors.Is(err, errPermanent):
		return permanent
	case err != nil:
		return retry
	case status >= 200 && status < 300:
		return delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return retry
	default:
		return permanent
	}
}

// parseRetryAfter reads a Retry-After header given in seconds or as an HTTP
// date. It returns zero when the header is absent or unusable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs < 0 {
			return 0
		}
		// More seconds than a Duration holds (or than an int does) wait
		// as long as a Duration can: the policy caps it.
		if err != nil || int64(secs) > math.MaxInt64/int64(time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
