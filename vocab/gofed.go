package vocab

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-fed/activity/streams"
	"github.com/go-fed/activity/streams/vocab"
)

// as2Kind is how this package carries an ActivityStreams core type.
type as2Kind int

const (
	as2Unknown  as2Kind = iota // not an ActivityStreams (or go-fed extension) type
	as2Activity                // Activity, IntransitiveActivity and their subtypes
	as2Actor                   // Person, Organization, Service, Application, Group
	as2Other                   // Note, Event, collections, links and the rest
)

// coreTypeNames are the ActivityStreams 2.0 vocabulary's type names, the
// ones Vultron messages carry. Their kinds are resolved once (by
// resolveAS2Kind, so with exactly go-fed's answer) and then read from a
// table: go-fed's resolver costs tens of microseconds per call, which
// dominated parsing a case's ledger.
var coreTypeNames = [...]string{
	"Object", "Link", "Activity", "IntransitiveActivity", "Collection", "OrderedCollection",
	"CollectionPage", "OrderedCollectionPage",
	"Accept", "Add", "Announce", "Arrive", "Block", "Create", "Delete", "Dislike", "Flag",
	"Follow", "Ignore", "Invite", "Join", "Leave", "Like", "Listen", "Move", "Offer",
	"Question", "Reject", "Read", "Remove", "TentativeReject", "TentativeAccept", "Travel",
	"Undo", "Update", "View",
	"Application", "Group", "Organization", "Person", "Service",
	"Article", "Audio", "Document", "Event", "Image", "Note", "Page", "Place", "Profile",
	"Relationship", "Tombstone", "Video", "Mention",
}

// coreKinds is the table of coreTypeNames' kinds, built on first use and
// never changed afterwards.
var coreKinds = sync.OnceValue(func() map[string]as2Kind {
	kinds := make(map[string]as2Kind, len(coreTypeNames))
	for _, name := range coreTypeNames {
		if kind, err := resolveAS2Kind(name); err == nil {
			kinds[name] = kind
		}
	}
	return kinds
})

// recognizeAS2 returns the kind of an ActivityStreams type name: from the
// table for the core vocabulary, from go-fed's resolver for anything else.
func recognizeAS2(typeName string) (as2Kind, error) {
	if kind, ok := coreKinds()[typeName]; ok {
		return kind, nil
	}
	return resolveAS2Kind(typeName)
}

// resolveAS2Kind asks go-fed's generated resolver whether typeName is an
// ActivityStreams type, and which family it belongs to. Only the type is
// given to the resolver, so the answer does not depend on the properties.
// The properties are checked by this package: go-fed's deserialisers keep a
// value of the wrong kind (a number as "published", say) as an "unknown"
// value instead of refusing it.
func resolveAS2Kind(typeName string) (as2Kind, error) {
	t, err := streams.ToType(context.Background(), map[string]any{
		"@context": ActivityStreamsContext,
		"type":     typeName,
	})
	if errors.Is(err, streams.ErrUnhandledType) {
		return as2Unknown, nil
	}
	if err != nil {
		return as2Unknown, fmt.Errorf("recognize type %s: %w", typeName, err)
	}
	switch {
	case streams.IsOrExtendsActivityStreamsActivity(t), streams.IsOrExtendsActivityStreamsIntransitiveActivity(t):
		return as2Activity, nil
	case isActorType(t):
		return as2Actor, nil
	}
	return as2Other, nil
}

func isActorType(t vocab.Type) bool {
	return streams.IsOrExtendsActivityStreamsPerson(t) ||
		streams.IsOrExtendsActivityStreamsOrganization(t) ||
		streams.IsOrExtendsActivityStreamsService(t) ||
		streams.IsOrExtendsActivityStreamsApplication(t) ||
		streams.IsOrExtendsActivityStreamsGroup(t)
}
