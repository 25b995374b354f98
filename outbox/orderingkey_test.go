package outbox

import (
	"testing"

	"github.com/openvultron/vultron/vocab"
)

// resolverMap resolves ids from a map.
type resolverMap map[string]vocab.Object

func (m resolverMap) Resolve(id string) (vocab.Object, bool) {
	o, ok := m[id]
	return o, ok
}

// TestOrderingKey checks the lane of an activity: its case (context), or
// the report it is about, also when it names the report's Offer only by id,
// so that RV, RI and RC about one report reach the reporter in order.
func TestOrderingKey(t *testing.T) {
	report := &vocab.VulnerabilityReport{}
	report.ID, report.Type = "https://f.example/objects/r1", "VulnerabilityReport"
	offer := &vocab.Activity{Object: vocab.Ref{Object: report}}
	offer.ID, offer.Type = "https://f.example/activities/o1", "Offer"
	r := resolverMap{offer.ID: offer}

	answer := &vocab.Activity{Object: vocab.RefTo(offer.ID)}
	answer.Type = "TentativeReject"
	inCase := &vocab.Activity{Object: vocab.RefTo("https://v.example/cases/c1")}
	inCase.Type, inCase.Context = "Join", vocab.RefTo("https://v.example/cases/c1")
	for _, tt := range []struct {
		name string
		a    *vocab.Activity
		r    vocab.Resolver
		want string
	}{
		{"answer by id", answer, r, report.ID},
		{"answer by id, nothing resolves", answer, resolverMap{}, ""},
		{"the offer itself", offer, nil, report.ID},
		{"case-scoped", inCase, r, "https://v.example/cases/c1"},
	} {
		if got := orderingKey(tt.a, tt.r); got != tt.want {
			t.Errorf("%s: key %q, want %q", tt.name, got, tt.want)
		}
	}
}
