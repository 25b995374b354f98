//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockBoltFile takes the lock bbolt takes on the store file f (flock:
// exclusive to write, shared to read), waiting up to timeout (forever when
// it is not positive) for a process that holds it, and then fails with
// ErrLocked. bbolt takes the same lock again on the same open file, which
// holds it already, so the store's checks of the file at open
// (checkBoltOpenFile) run under the lock and never read the pages of a file
// that a running node is writing. flock has no timed wait: the lock is
// tried again every lockRetry, as bbolt does.
func lockBoltFile(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if timeout <= 0 {
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		case time.Now().After(deadline):
			return fmt.Errorf("%w (file lock not acquired within %s)", ErrLocked, timeout)
		}
		time.Sleep(min(lockRetry, time.Until(deadline)+time.Millisecond))
	}
}

// lockRetry is how often lockBoltFile tries a lock another process holds.
const lockRetry = 50 * time.Millisecond
