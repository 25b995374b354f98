package vocab

import (
	"context"
	"errors"
	"fmt"

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

// recognizeAS2 asks go-fed's generated resolver whether typeName is an
// ActivityStreams type, and which family it belongs to. Only the type is
// given to the resolver, so the answer does not depend on the properties.
// The properties are checked by this package: go-fed's deserialisers keep a
// value of the wrong kind (a number as "published", say) as an "unknown"
// value instead of refusing it.
func recognizeAS2(typeName string) (as2Kind, error) {
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
