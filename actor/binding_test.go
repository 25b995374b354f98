package actor

import "testing"

func TestCheckBinding(t *testing.T) {
	alice := Signer{KeyID: aliceKey, Owner: aliceID, Scheme: SchemeCavage}
	for _, tc := range []struct {
		name, id, actor, reason string
	}{
		{"bound", "https://peer.example/activities/1", aliceID, ""},
		{"B11 actor on another host", "https://other.example/activities/1", "https://other.example/actors/alice",
			"key " + aliceKey + " is owned by " + aliceID + ", not by the activity's actor https://other.example/actors/alice"},
		{"B12 another actor on the same host", "https://peer.example/activities/1", "https://peer.example/actors/bob",
			"is owned by " + aliceID + ", not by the activity's actor https://peer.example/actors/bob"},
		{"B15 activity id on another host", "https://other.example/activities/1", aliceID,
			"activity id host other.example is not the actor's host peer.example"},
		{"B15 missing id", "", aliceID, "activity has no id"},
		{"B15 relative id", "/activities/1", aliceID, "is not an absolute http(s) URL"},
		{"missing actor", "https://peer.example/activities/1", "", "activity has no actor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBinding(alice, tc.id, tc.actor)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, tc.reason)
		})
	}
}
