//go:build !unix

package store

import (
	"os"
	"time"
)

// lockBoltFile does nothing where flock is not: bbolt takes its own lock
// after the store's checks of the file at open.
func lockBoltFile(*os.File, bool, time.Duration) error { return nil }
