package vocab

import "testing"

// TestRepliesClassifyInMemory checks that an acknowledgement and an error
// built in memory (Acknowledge, Refuse: a Read or an Ignore of the
// message's Stub) classify as the K and the E of the message's model
// before they are written to the wire, as the node files them, for the
// messages whose objects are of this node's own types.
func TestRepliesClassifyInMemory(t *testing.T) {
	const caseID = "https://v.example/cases/c1"
	add := func(o Object) *Activity {
		a := &Activity{}
		a.ID, a.Type = "https://v.example/activities/1", "Add"
		a.Actor = RefTo("https://v.example/actors/vendor")
		a.Object, a.Target, a.Context = Inline(o), RefTo(caseID), RefTo(caseID)
		return a
	}
	product := &ProductStatus{Status: "fixed"}
	product.Type, product.Name = TypeProductStatus, "Widget"
	record := &VulnerabilityRecord{}
	record.Type, record.Name = TypeVulnerabilityRecord, "CVE-2026-1234"
	tests := []struct {
		name     string
		msg      *Activity
		ack, err Semantic
	}{
		{"a product status", add(product), AckInquiry, GeneralError},
		{"a vulnerability record", add(record), "", GeneralError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := Classify(Stub(tt.msg, nil), nil).Semantic, Classify(tt.msg, nil).Semantic; got != want {
				t.Errorf("the stub classifies as %s, the message as %s", got, want)
			}
			if tt.ack != "" {
				if got := Classify(Acknowledge("https://v.example/actors/case-c1", tt.msg, "https://v.example/actors/vendor", caseID, nil), nil).Semantic; got != tt.ack {
					t.Errorf("its acknowledgement classifies as %s, want %s", got, tt.ack)
				}
			}
			if got := Classify(Refuse("https://v.example/actors/case-c1", tt.msg, "https://v.example/actors/vendor", caseID, "no", nil), nil).Semantic; got != tt.err {
				t.Errorf("its error classifies as %s, want %s", got, tt.err)
			}
		})
	}
}
