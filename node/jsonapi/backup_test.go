package jsonapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openvultron/vultron/problem"
)

// TestBackupRoom: a backup is taken only when the free space beside the
// store holds the copy and leaves the store room to grow (a tenth of the
// copy, at least 64 MiB); otherwise it is refused with 507 and a sentence
// that says how much is needed and what to do.
func TestBackupRoom(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name       string
		free       uint64
		size       int64
		refused    bool
		inSentence string
	}{
		{"plenty", 100 << 30, 1 << 30, false, ""},
		{"a small store and the least headroom", 65*mb + 4096, mb, false, ""},
		{"a small store without the least headroom", 64 * mb, mb, true, "the copy takes 1 MiB and the store needs room to grow meanwhile (65 MiB in all), but 64 MiB are free"},
		{"a large store and a tenth of it", 11 << 30, 10 << 30, false, ""},
		{"a large store without a tenth of it", 10<<30 + 512*mb, 10 << 30, true, "(11264 MiB in all), but 10752 MiB are free"},
		{"the copy fills the disk", 4 * mb, 4 * mb, true, "free some space there and ask again"},
		{"no space at all", 0, 4096, true, "but 0 MiB are free"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := backupRoom(tc.free, tc.size)
			if !tc.refused {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if problem.Status(err) != http.StatusInsufficientStorage || !strings.Contains(problem.Message(err), tc.inSentence) {
				t.Errorf("%v (status %d), want 507 saying %q", err, problem.Status(err), tc.inSentence)
			}
		})
	}
}
