package dashboard

import (
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/deadline"
)

// TestFirstDeadlines keeps the case page's deadlines to the first ones due:
// a case of thousands of participants runs thousands of clocks.
func TestFirstDeadlines(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ds := make([]deadline.Deadline, 50)
	for i := range ds {
		ds[i] = deadline.Deadline{Clock: cases.Clock{Kind: cases.ClockEngage}, Due: t0.Add(time.Duration(i) * time.Hour)}
	}
	tests := []struct {
		limit, want int
	}{{caseDeadlineRows, caseDeadlineRows}, {0, 50}, {-1, 50}, {60, 50}, {1, 1}}
	for _, tt := range tests {
		got := firstDeadlines(ds, tt.limit)
		if len(got) != tt.want {
			t.Errorf("limit %d: %d deadlines, want %d", tt.limit, len(got), tt.want)
			continue
		}
		if len(got) > 0 && !got[0].Due.Equal(t0) {
			t.Errorf("limit %d: the first shown is due %s, want the first due (%s)", tt.limit, got[0].Due, t0)
		}
	}
}
