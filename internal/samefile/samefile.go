// Package samefile says whether two paths name one file: the check that
// keeps a command from reading and writing the same file as two (store
// copy's source and destination) and a secret from being set in another
// secret's file (the node's token files). It is the one such check of the
// module.
package samefile

import (
	"os"
	"path/filepath"
)

// Is reports whether the paths a and b name one file: the same path once
// made absolute, or, when both exist, the same file through a link.
func Is(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	if errA == nil && errB == nil && absA == absB {
		return true
	}
	infoA, errA := os.Stat(a)
	infoB, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(infoA, infoB)
}
