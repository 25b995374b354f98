package dashboard

import "testing"

// TestSafeNextKeepsRedirectsOnThisNode checks the post-login redirect
// against what browsers make of it: they drop tabs and newlines from a
// URL and read a backslash as a slash, so "/\t/evil.example" leads to
// //evil.example, another site.
func TestSafeNextKeepsRedirectsOnThisNode(t *testing.T) {
	for _, tt := range []struct{ next, want string }{
		{"/ui/cases/x?y=1#z", "/ui/cases/x?y=1#z"},
		{"/", "/"},
		{"", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/path", "/"},
		{"/\\evil.example", "/"},
		{"/\t/evil.example/path", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\x7f/evil.example", "/"},
		{"\t//evil.example", "/"},
		{"/%09/evil.example", "/%09/evil.example"}, // an escape stays one: the browser asks this node for it
		{"javascript:alert(1)", "/"},
	} {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}
