//go:build unix

package jsonapi

import "syscall"

// freeBytes returns the bytes an unprivileged process may still write on
// the file system that holds dir, and whether it could tell.
func freeBytes(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
