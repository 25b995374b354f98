package urlhost

import "testing"

// TestSame checks which pairs of URLs are on the same host: the host
// compared without regard to case, a scheme's default port written out or
// left out alike, and nothing without a host the same as anything.
func TestSame(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"https://node.example/actors/a", "https://node.example/actors/a#main-key", true},
		{"https://Node.Example/actors/a", "https://node.example/keys/1", true},
		{"https://node.example/a", "https://node.example:443/b", true},
		{"http://node.example:80/a", "http://node.example/b", true},
		{"http://node.example/a", "https://node.example/inbox", true},
		{"http://127.0.0.1:7001/actors/a", "http://127.0.0.1:7001/actors/a/inbox", true},
		{"http://127.0.0.1:7001/actors/a", "http://127.0.0.1:7002/actors/a/inbox", false},
		{"https://node.example:8443/a", "https://node.example/b", false},
		{"https://node.example/a", "https://other.example/a", false},
		{"https://node.example.evil/a", "https://node.example/a", false},
		{"urn:uuid:1", "urn:uuid:2", false},
		{"", "", false},
		{"https://node.example/a", "::not a url", false},
	} {
		if got := Same(tt.a, tt.b); got != tt.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
