//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package store

import (
	"os"
	"time"
)

// lockBoltFile does nothing where bbolt does not lock with flock (Windows,
// Solaris and illumos, AIX...): bbolt takes its own lock after the
// store's checks of the file at open, which may then read a file that a
// running node is writing.
func lockBoltFile(*os.File, bool, time.Duration) error { return nil }
