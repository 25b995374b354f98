package store

import "testing"

func TestBucketLabel(t *testing.T) {
	for _, c := range []struct {
		name []byte
		want string
	}{
		{[]byte("automation"), `"automation"`},
		{[]byte("report https://f.example/reports/1"), `"report https://f.example/reports/1"`},
		{[]byte(`say "hi"`), `"say \"hi\""`},
		{[]byte("line\nbreak"), "6c696e650a627265616b"},
		{[]byte{0, 0, 0, 7}, "00000007"},
		{[]byte("café"), "636166c3a9"},
		{nil, `""`},
	} {
		if got := bucketLabel(c.name); got != c.want {
			t.Errorf("bucketLabel(%q) = %s, want %s", c.name, got, c.want)
		}
	}
}
