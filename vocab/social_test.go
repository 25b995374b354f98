package vocab

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestSocialActivities builds each plain ActivityStreams activity with
// go-fed's types, parses it strictly, checks that Classify still calls it
// no Vultron message while ClassifySocial names it, and reads the Follow
// back with go-fed's resolver.
func TestSocialActivities(t *testing.T) {
	const (
		me     = "https://vendor.example/actors/psirt"
		them   = "https://coord.example/users/cc"
		follow = "https://coord.example/activities/follow-1"
	)
	fi := FollowInfo{ID: follow, Actor: them, Object: me}
	build := func(m map[string]any, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		m["id"] = "https://x.example/activities/1"
		if _, ok := m["actor"]; !ok {
			m["actor"] = me
		}
		return m
	}
	followDoc := build(NewFollow(them))
	followDoc["actor"] = them
	article := build(NewArticle(Article{ID: "https://vendor.example/advisories/a", URL: "https://vendor.example/advisories/a",
		Name: "Title", Summary: "S", Content: "<p>C</p>", AttributedTo: me, To: []string{"https://www.w3.org/ns/activitystreams#Public"},
		Attachments: []ArticleLink{{Href: "https://vendor.example/advisories/a/csaf.json", MediaType: "application/json", Name: "CSAF"}},
		Hashtags:    []string{"CVE-2026-1234"}}))
	tests := []struct {
		name    string
		doc     map[string]any
		want    Semantic
		follow  FollowInfo // expected from ReadFollow, when set
		inTypes []string   // substrings the JSON must hold
	}{
		{"follow", followDoc, SocialFollow, FollowInfo{ID: "https://x.example/activities/1", Actor: them, Object: them}, nil},
		{"accept", build(NewFollowAnswer(fi, true)), SocialAcceptFollow, fi, []string{`"type":"Accept"`}},
		{"reject", build(NewFollowAnswer(fi, false)), SocialRejectFollow, fi, []string{`"type":"Reject"`}},
		{"undo", build(NewUndo(fi)), SocialUndoFollow, fi, []string{`"type":"Undo"`}},
		{"announce", build(NewAnnounce("https://vendor.example/advisories/a", me+"/followers")), SocialAnnounce, FollowInfo{}, nil},
		{"create article", article, SocialCreateArticle, FollowInfo{}, []string{`"type":"Hashtag"`, `"name":"#CVE-2026-1234"`, `"type":"Link"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.inTypes {
				if !strings.Contains(string(raw), s) {
					t.Errorf("%s lacks %s", raw, s)
				}
			}
			doc, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse %s: %v", raw, err)
			}
			a := doc.Activity()
			if c := Classify(a, nil); c.Semantic != Unknown && c.Semantic != UnknownUnresolvableObject {
				t.Errorf("Classify = %s, want no Vultron message", c.Semantic)
			}
			if got := ClassifySocial(a, nil); got != tt.want {
				t.Errorf("ClassifySocial = %q, want %q", got, tt.want)
			}
			if tt.follow.ID == "" {
				return
			}
			got, err := ReadFollow(context.Background(), tt.doc)
			if err != nil {
				t.Fatalf("ReadFollow: %v", err)
			}
			if got != tt.follow {
				t.Errorf("ReadFollow = %+v, want %+v", got, tt.follow)
			}
		})
	}
	// A Vultron message is never social, nor a case's Create(Article).
	caseArticle := build(NewArticle(Article{ID: "https://vendor.example/advisories/a", URL: "https://vendor.example/advisories/a",
		Name: "T", Content: "C", AttributedTo: me, Context: "https://vendor.example/cases/1"}))
	raw, _ := json.Marshal(caseArticle)
	doc, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := Classify(doc.Activity(), nil).Semantic; got != PublishAdvisory {
		t.Errorf("a case's Create(Article) classifies as %s, want %s", got, PublishAdvisory)
	}
	if got := ClassifySocial(doc.Activity(), nil); got != "" {
		t.Errorf("a case's Create(Article) is social %q", got)
	}
}
