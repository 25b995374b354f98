package actor

import (
	"fmt"
	"net/url"

	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
)

// CheckBinding ties a verified signer to the activity it signed: the key's
// owner must be the activity's actor (so one actor cannot speak for
// another, on the same host or another), and the activity must have an id
// on the actor's host (so an actor cannot mint activities in another
// server's name). It returns a *VerifyError; callers answer 401.
func CheckBinding(s Signer, activityID, activityActor string) error {
	if activityActor == "" {
		return refuse("activity has no actor")
	}
	if s.Owner != activityActor {
		return refuse(fmt.Sprintf("key %s is owned by %s, not by the activity's actor %s", problem.Printable(s.KeyID, maxQuoted), problem.Printable(s.Owner, maxQuoted), problem.Printable(activityActor, maxQuoted)))
	}
	if activityID == "" {
		return refuse("activity has no id")
	}
	au, err := url.Parse(activityActor)
	if err != nil || au.Host == "" {
		return refuse(fmt.Sprintf("activity actor %s is not an absolute URL", problem.Printable(activityActor, maxQuoted)))
	}
	iu, err := url.Parse(activityID)
	if err != nil || iu.Host == "" || (iu.Scheme != "https" && iu.Scheme != "http") {
		return refuse(fmt.Sprintf("activity id %s is not an absolute http(s) URL", problem.Printable(activityID, maxQuoted)))
	}
	if !urlhost.Same(activityID, activityActor) {
		return refuse(fmt.Sprintf("activity id host %s is not the actor's host %s", problem.Printable(iu.Host, maxQuoted), problem.Printable(au.Host, maxQuoted)))
	}
	return nil
}
