package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/problem"
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

// TestPasswordDoesNotClearSecondFactorFailures: someone who has a
// user's password, and guesses the second factor from a new address
// for each pending login, finds the name's backoff growing with every
// wrong code: the right password opens a pending login but does not
// clear the name's failures, which only a completed login does. With
// a wait reset at every password, five guesses a pending login at a
// few seconds' wait each would let them try codes around the clock.
func TestPasswordDoesNotClearSecondFactorFailures(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	enroll := enrolled(t, s, admin, "hana", Analyst, "hana's long password")
	_, secret := withApp(t, s, c, enroll.SessionID, LoginMeta{Remote: "192.0.2.1"})
	wrongCode := func(at time.Time) string {
		// A code that is none of the accepted window's.
		for _, try := range []string{"000000", "111111", "222222", "333333"} {
			ok := true
			for d := -totpSkew; d <= totpSkew; d++ {
				if code(t, secret, at.Add(time.Duration(d*totpPeriod)*time.Second)) == try {
					ok = false
				}
			}
			if ok {
				return try
			}
		}
		t.Fatal("no wrong code")
		return ""
	}
	// waitOut advances the clock by a throttle's Retry-After, and
	// reports whether err was one.
	waitOut := func(err error) bool {
		var pe *problem.Error
		if errors.As(err, &pe) && pe.Status == http.StatusTooManyRequests {
			c.Advance(pe.RetryAfter)
			return true
		}
		return false
	}
	wrong, ip := 0, 0
	for wrong < 20 {
		ip++
		m := LoginMeta{Remote: fmt.Sprintf("198.51.100.%d", ip)}
		pending, err := s.PasswordLogin(ctx, "hana", "hana's long password", m)
		if waitOut(err) {
			continue
		}
		if err != nil || pending.Stage != StageSecondFactor {
			t.Fatalf("password step = %+v, %v", pending, err)
		}
		for range min(maxFactorAttempts, 20-wrong) {
			_, err := s.SecondFactorTOTP(ctx, pending.SessionID, wrongCode(c.Now()), m)
			if waitOut(err) {
				break
			}
			wantStatus(t, "a wrong code", err, http.StatusUnauthorized)
			wrong++
		}
	}
	// Twenty failures of the name: the wait is the longest there is,
	// from any address, even with the right password.
	_, err := s.PasswordLogin(ctx, "hana", "hana's long password", LoginMeta{Remote: "203.0.113.1"})
	wantStatus(t, "the password after 20 wrong second factors", err, http.StatusTooManyRequests)
	if pe := (*problem.Error)(nil); !errors.As(err, &pe) || pe.RetryAfter < maxWait-time.Minute {
		t.Fatalf("after 20 wrong second factors the name waits: %v; want about %v", err, maxWait)
	}
	// A completed login clears the name.
	c.Advance(maxWait)
	m := LoginMeta{Remote: "203.0.113.2"}
	// The right password and code after the wait.
	loginWithApp(t, s, c, "hana", "hana's long password", secret, m)
	if _, err := s.PasswordLogin(ctx, "hana", "wrong password!!", m); problem.Message(err) != wrongLogin {
		t.Errorf("a wrong password after a completed login: %v, want the first free failure", err)
	}
}

// TestThrottleCountsAnIPv6NetworkAsOneAddress: a client on IPv6 has a
// whole /64 to itself and may send each guess from another address of
// it; the throttle counts the /64, as one address, so that spraying
// passwords over many names from one network waits as it does from one
// IPv4 address. Another /64 is not held up.
func TestThrottleCountsAnIPv6NetworkAsOneAddress(t *testing.T) {
	_, s, admin := serviceWithAdmin(t, backends[0].url(t), func(cfg *Config) { cfg.SecondFactorOptional = true })
	ctx := context.Background()
	enrolled(t, s, admin, "erin", Viewer, "correct horse battery")
	for i := range freeIPFailures + 1 {
		m := LoginMeta{Remote: fmt.Sprintf("2001:db8:1:2::%x", i+1)}
		if _, err := s.PasswordLogin(ctx, fmt.Sprintf("sprayed-%d", i), "x", m); problem.Message(err) != wrongLogin {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	_, err := s.PasswordLogin(ctx, "erin", "correct horse battery", LoginMeta{Remote: "2001:db8:1:2:abcd:ef01:2345:6789"})
	wantStatus(t, "another address of a sprayed /64", err, http.StatusTooManyRequests)
	if _, err := s.PasswordLogin(ctx, "erin", "correct horse battery", LoginMeta{Remote: "2001:db8:1:3::1"}); err != nil {
		t.Errorf("an address of another /64: %v", err)
	}
	// An IPv4 address, and one written as IPv4-mapped IPv6, are one.
	for i := range freeIPFailures + 1 {
		if _, err := s.PasswordLogin(ctx, fmt.Sprintf("sprayed-%d", i), "x", LoginMeta{Remote: "198.51.100.7"}); problem.Message(err) != wrongLogin {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	_, err = s.PasswordLogin(ctx, "erin", "correct horse battery", LoginMeta{Remote: "::ffff:198.51.100.7"})
	wantStatus(t, "a sprayed IPv4 address written as IPv6", err, http.StatusTooManyRequests)
	if _, err := s.PasswordLogin(ctx, "erin", "correct horse battery", LoginMeta{Remote: "198.51.100.8"}); err != nil {
		t.Errorf("the next IPv4 address: %v", err)
	}
}

// TestConcurrentGuessesWaitTheirTurn: guesses of a name's password sent
// all at once are held to the throttle as guesses sent one after the
// other are: the free failures' worth is checked, and the rest are
// refused with 429 before any password is hashed, not let through
// because none of the others had failed yet when they were looked at.
func TestConcurrentGuessesWaitTheirTurn(t *testing.T) {
	_, s, admin := serviceWithAdmin(t, backends[0].url(t), func(cfg *Config) { cfg.SecondFactorOptional = true })
	ctx := context.Background()
	enrolled(t, s, admin, "ivan", Viewer, "ivan's long password")
	before := s.hasher.computed.Load()
	// Every hashing slot is taken, so that the guesses that get past
	// the throttle wait for one, as they would behind a busy node.
	for range cap(s.hasher.slots) {
		s.hasher.slots <- struct{}{}
	}
	const guesses = 20
	errs := make(chan error, guesses)
	for i := range guesses {
		go func() {
			_, err := s.PasswordLogin(ctx, "ivan", fmt.Sprintf("guess number %d", i), LoginMeta{Remote: fmt.Sprintf("198.51.100.%d", i+1)})
			errs <- err
		}()
	}
	// The refused ones answer while the others wait for a slot.
	refused := 0
	deadline := time.After(5 * time.Second)
	for refused < guesses-freeNameFailures {
		select {
		case err := <-errs:
			wantStatus(t, "a guess beyond the free ones", err, http.StatusTooManyRequests)
			refused++
		case <-deadline:
			t.Errorf("%d of %d guesses sent at once were refused before hashing; want %d", refused, guesses, guesses-freeNameFailures)
			refused = guesses
		}
	}
	for range cap(s.hasher.slots) {
		<-s.hasher.slots
	}
	for range guesses - refused {
		if err := <-errs; problem.Message(err) != wrongLogin {
			t.Errorf("a guess within the free ones: %v, want %q", err, wrongLogin)
		}
	}
	if n := s.hasher.computed.Load() - before; n > freeNameFailures {
		t.Errorf("%d passwords hashed for %d guesses sent at once; want at most %d", n, guesses, freeNameFailures)
	}
}

// TestConcurrentSecondFactorGuessesWaitTheirTurn: wrong second factors
// sent all at once to one pending login are held to the name's throttle
// as codes sent one after the other are: the free failures' worth and
// one more are checked, and the rest refused. Whether a burst overtakes
// the count of its failures depends on the scheduling, so it is sent for
// several users in turn.
func TestConcurrentSecondFactorGuessesWaitTheirTurn(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	const (
		rounds  = 20
		guesses = 30
	)
	for round := range rounds {
		// The enrollment helper's second use of its link is a failure of
		// its address: its waits are over by the next round.
		c.Advance(maxWait)
		name := fmt.Sprintf("jude-%d", round)
		enroll := enrolled(t, s, admin, name, Analyst, "jude's long password")
		withApp(t, s, c, enroll.SessionID, LoginMeta{Remote: "192.0.2.1"})
		pending, err := s.PasswordLogin(ctx, name, "jude's long password", LoginMeta{Remote: "192.0.2.2"})
		if err != nil || pending.Stage != StageSecondFactor {
			t.Fatalf("password step = %+v, %v", pending, err)
		}
		errs := make(chan error, guesses)
		for i := range guesses {
			go func() {
				_, err := s.SecondFactorRecovery(ctx, pending.SessionID, fmt.Sprintf("AAAA-AAAA-AAAA-%04d", i), LoginMeta{Remote: fmt.Sprintf("198.51.%d.%d", round, i+1)})
				errs <- err
			}()
		}
		checked := 0
		for range guesses {
			err := <-errs
			switch msg := problem.Message(err); {
			case msg == "that is not one of your unused recovery codes", strings.HasPrefix(msg, "too many wrong second factors"):
				checked++
			case problem.Status(err) == http.StatusUnauthorized, problem.Status(err) == http.StatusTooManyRequests:
			default:
				t.Errorf("a wrong recovery code: %v", err)
			}
		}
		if checked > freeNameFailures+1 {
			t.Fatalf("%s: %d of %d wrong recovery codes sent at once were checked; want at most %d, as when sent one after the other", name, checked, guesses, freeNameFailures+1)
		}
	}
}
