package vocab

import (
	"errors"
	"strings"
	"testing"
)

// TestContextRedefinitionsRefused: a local context object (in an @context
// array, or an object's own @context anywhere in the document) may add
// terms, but not give a term this node reads as ActivityStreams or Vultron
// another meaning, nor name a keyword or such a term under another name:
// a JSON-LD reader would then read the document differently from this
// node. Each is refused with a *ParseError that says which term.
func TestContextRedefinitionsRefused(t *testing.T) {
	const as = `"https://www.w3.org/ns/activitystreams"`
	doc := func(local string) string {
		return `{"@context":[` + as + `,` + local + `],"type":"Offer","id":"https://f.example/a/1","actor":"https://f.example/u/f","object":{"type":"VulnerabilityReport","id":"https://f.example/r/1","name":"r"}}`
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"type as @id", doc(`{"type":"@id"}`), `$.@context[1].type: the context redefines "type", which this node reads as @type, as @id`},
		{"id as @type", doc(`{"id":"@type"}`), `$.@context[1].id: the context redefines "id"`},
		{"keyword alias", doc(`{"kind":"@type"}`), `$.@context[1].kind: the context makes "kind" an alias of the keyword @type`},
		{"keyword alias in an object", doc(`{"kind":{"@id":"@type"}}`), `an alias of the keyword @type`},
		{"Offer elsewhere", doc(`{"Offer":"https://evil.example/ns#Offer"}`), `$.@context[1].Offer: the context redefines "Offer", which this node reads as https://www.w3.org/ns/activitystreams#Offer, as https://evil.example/ns#Offer`},
		{"actor elsewhere", doc(`{"actor":{"@id":"https://evil.example/ns#sender","@type":"@id"}}`), `redefines "actor"`},
		{"the as prefix", doc(`{"as":"https://evil.example/ns#"}`), `redefines "as"`},
		{"an alias of actor", doc(`{"sender":"as:actor"}`), `$.@context[1].sender: the context makes "sender" another name of https://www.w3.org/ns/activitystreams#actor, which this node reads only as "actor"`},
		{"an alias by full IRI", doc(`{"sender":"http://www.w3.org/ns/activitystreams#actor"}`), `another name of`},
		{"a Vultron type elsewhere", doc(`{"VulnerabilityReport":"https://evil.example/Report"}`), `redefines "VulnerabilityReport"`},
		{"a Vultron property elsewhere", doc(`{"rmState":"https://evil.example/rm"}`), `redefines "rmState"`},
		{"a term removed", doc(`{"object":null}`), `redefines "object"`},
		{"a reverse property", doc(`{"object":{"@reverse":"as:object"}}`), `redefines "object"`},
		{"a scoped context", doc(`{"Note":{"@id":"as:Note","@context":{"content":"https://evil.example/c"}}}`), `$.@context[1].Note: a term definition may not carry its own @context`},
		{"@vocab", doc(`{"@vocab":"https://evil.example/"}`), `$.@context[1].@vocab: a local context may not set @vocab`},
		{"@base", doc(`{"@base":"https://evil.example/"}`), `may not set @base`},
		{"@import", doc(`{"@import":"https://evil.example/c"}`), `may not set @import`},
		{"a number in the array", doc(`5`), `$.@context[1]: an element of @context must be a context URL or a context object, not a number`},
		{"a nested object's context", `{"@context":` + as + `,"type":"Offer","id":"https://f.example/a/1","object":{"@context":[` + as + `,{"name":"https://evil.example/title"}],"type":"Note","id":"https://f.example/n/1"}}`,
			`$.object.@context[1].name: the context redefines "name"`},
		{"a context in a property the node does not model", `{"@context":` + as + `,"type":"Note","id":"https://f.example/n/1","attachment":[{"@context":{"type":"@id"},"type":"Document"}]}`,
			`$.attachment[0].@context.type: the context redefines "type"`},
		{"a null nested context", `{"@context":` + as + `,"type":"Offer","id":"https://f.example/a/1","object":{"@context":null,"type":"Note","id":"https://f.example/n/1"}}`,
			`$.object.@context: a null @context drops the ActivityStreams context`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestContextsOfKnownPeersAccepted: the contexts other servers send, which
// add their own terms and restate a few ActivityStreams ones with their
// own meaning, parse.
func TestContextsOfKnownPeersAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, ctx string
	}{
		{"ActivityStreams alone", `"https://www.w3.org/ns/activitystreams"`},
		{"Vultron alone", `"https://certcc.github.io/Vultron/ns/context.jsonld"`},
		{"Vultron prefix", `["https://www.w3.org/ns/activitystreams",{"vultron":"https://certcc.github.io/Vultron/ns#"}]`},
		{"Vultron types in their namespace", `["https://www.w3.org/ns/activitystreams",{"vultron":"https://certcc.github.io/Vultron/ns#","VulnerabilityReport":"vultron:VulnerabilityReport","rmState":{"@id":"vultron:rmState"}}]`},
		{"Mastodon", `["https://www.w3.org/ns/activitystreams","https://w3id.org/security/v1",{"manuallyApprovesFollowers":"as:manuallyApprovesFollowers","toot":"http://joinmastodon.org/ns#",
"featured":{"@id":"toot:featured","@type":"@id"},"alsoKnownAs":{"@id":"as:alsoKnownAs","@type":"@id"},"movedTo":{"@id":"as:movedTo","@type":"@id"},
"schema":"http://schema.org#","PropertyValue":"schema:PropertyValue","value":"schema:value","discoverable":"toot:discoverable","sensitive":"as:sensitive",
"Hashtag":"as:Hashtag","ostatus":"http://ostatus.org#","atomUri":"ostatus:atomUri","conversation":"ostatus:conversation","Emoji":"toot:Emoji",
"focalPoint":{"@container":"@list","@id":"toot:focalPoint"},"blurhash":"toot:blurhash","votersCount":"toot:votersCount"}]`},
		{"Fedify", `["https://www.w3.org/ns/activitystreams","https://w3id.org/security/data-integrity/v1",{"toot":"http://joinmastodon.org/ns#",
"misskey":"https://misskey-hub.net/ns#","fedibird":"http://fedibird.com/ns#","ChatMessage":"http://litepub.social/ns#ChatMessage","sensitive":"as:sensitive",
"Emoji":"toot:Emoji","Hashtag":"as:Hashtag","quoteUrl":"as:quoteUrl","_misskey_quote":"misskey:_misskey_quote",
"emojiReactions":{"@id":"fedibird:emojiReactions","@type":"@id"}}]`},
		{"FEP-844e implements", `["https://www.w3.org/ns/activitystreams",{"implements":{"@id":"https://w3id.org/fep/844e/implements","@type":"@id","@container":"@list"}}]`},
		{"Pleroma", `["https://www.w3.org/ns/activitystreams","https://pleroma.example/schemas/litepub-0.1.jsonld",{"@language":"und"}]`},
		{"GoToSocial", `["https://www.w3.org/ns/activitystreams","https://gotosocial.org/ns","https://w3id.org/security/v1"]`},
		{"a term restated as itself", `["https://www.w3.org/ns/activitystreams",{"as":"https://www.w3.org/ns/activitystreams#","Offer":"as:Offer","object":{"@id":"as:object","@type":"@id"}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"@context":` + tc.ctx + `,"type":"Offer","id":"https://f.example/a/1","actor":"https://f.example/u/f","to":"https://v.example/u/v",
"object":{"type":"VulnerabilityReport","id":"https://f.example/r/1","name":"r","sensitive":false}}`
			if _, err := Parse([]byte(doc)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// TestMemberNamesThatAliasReadTermsRefused: a member whose name a JSON-LD
// peer expands to a term this node reads under another name (a compact
// IRI such as "as:actor", the term's full IRI, a JSON-LD keyword such as
// "@type" beside "type"), or a prefix a local context makes of a
// namespace this node reads, would give that peer a value the node never
// read: refused with 400, like a context that redefines the term.
func TestMemberNamesThatAliasReadTermsRefused(t *testing.T) {
	const as = `"https://www.w3.org/ns/activitystreams"`
	doc := func(ctx, member string) string {
		return `{"@context":` + ctx + `,"type":"Offer","id":"https://f.example/a/1","actor":"https://f.example/u/f",` + member + `,"object":{"type":"VulnerabilityReport","id":"https://f.example/r/1","name":"r"}}`
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"a compact IRI", doc(as, `"as:actor":"https://evil.example/u/e"`), `$["as:actor"]: the member "as:actor" is another name of https://www.w3.org/ns/activitystreams#actor, which this node reads only as "actor"`},
		{"a full IRI", doc(as, `"https://www.w3.org/ns/activitystreams#to":"https://evil.example/u/e"`), `which this node reads only as "to"`},
		{"the http spelling", doc(as, `"http://www.w3.org/ns/activitystreams#object":"https://evil.example/x"`), `which this node reads only as "object"`},
		{"a Vultron term", doc(`["https://certcc.github.io/Vultron/ns/context.jsonld"]`, `"vultron:rmState":"CLOSED"`), `which this node reads only as "rmState"`},
		{"a nested member", `{"@context":` + as + `,"type":"Offer","id":"https://f.example/a/1","object":{"type":"Note","id":"https://f.example/n/1","as:content":"x"}}`, `$.object["as:content"]: the member "as:content" is another name`},
		{"@type beside type", doc(as, `"@type":"Note"`), `$.@type: the member "@type" is a JSON-LD keyword`},
		{"@id beside id", doc(as, `"@id":"https://evil.example/z"`), `the member "@id" is a JSON-LD keyword`},
		{"another prefix of ActivityStreams", doc(`[`+as+`,{"a":"https://www.w3.org/ns/activitystreams#"}]`, `"a:cc":"https://evil.example/u/e"`), `$.@context[1].a: the context makes "a" another prefix of https://www.w3.org/ns/activitystreams#`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
