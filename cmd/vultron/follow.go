package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/vocab"
)

// The plain ActivityPub commands: follow, unfollow, followers, announce.
// Each sends one activity through the acting actor's outbox, built with
// vocab's go-fed builders, and prints one line; the node decides (a second
// Follow of the same actor, an answer to no pending Follow: 409).

// followDeliveryHelp says what the following commands print of the
// delivery of what they send.
const followDeliveryHelp = "The command waits (at most 10s) for the node's first attempt to deliver the activity and says,\n" +
	"when it did not arrive, why and when the node tries again (\"vultron deliveries\" lists it); exit\n" +
	"status 1 when the recipient refused it for good (a dead letter)."

// followFlags are the flags every following command takes.
type followFlags struct {
	nf     nodeFlags
	as     *string
	asJSON *bool
}

func addFollowFlags(fs *flag.FlagSet) followFlags {
	return followFlags{nf: addNodeFlags(fs),
		as:     fs.String("as", "", "the local actor that acts (its name on the node; default: the node's only actor)"),
		asJSON: fs.Bool("json", false, "print JSON")}
}

// start parses the command line and returns a session of the acting actor.
func (f followFlags) start(ctx context.Context, fs *flag.FlagSet, env *environment, args []string) (*session, error) {
	c, err := f.nf.parse(fs, env, args)
	if err != nil {
		return nil, err
	}
	name, err := actingActor(ctx, c, *f.as)
	if err != nil {
		return nil, err
	}
	return &session{c: c, as: name, env: env}, nil
}

// actorURL checks that an argument is an actor's URL.
func actorURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", usageError("%q is not an actor's URL, such as https://cvd.vendor.example/actors/psirt", s)
	}
	return s, nil
}

// collectionMember is a member of a followers or following collection as
// the node shows it to its admins.
type collectionMember struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Follow      string `json:"follow"`
	SharedInbox string `json:"sharedInbox"`
	Since       string `json:"since"`
	// Reason is why a failed Follow failed, or a gone follower is gone.
	Reason string `json:"reason,omitempty"`
}

// members returns every member of the acting actor's followers or
// following collection in a state, page by page.
func (s *session) members(ctx context.Context, what, state string) ([]collectionMember, error) {
	var out []collectionMember
	after := ""
	for {
		q := url.Values{"state": {state}, "limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Items []collectionMember `json:"orderedItems"`
			Next  string             `json:"next"`
		}
		if err := s.c.do(ctx, "GET", "/actors/"+url.PathEscape(s.as)+"/"+what+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" || len(page.Items) == 0 {
			return out, nil
		}
		after = page.Items[len(page.Items)-1].ID
	}
}

// find returns the member with id actor, pending or accepted.
func (s *session) find(ctx context.Context, what, actor string) (collectionMember, bool, error) {
	for _, state := range []string{"accepted", "pending"} {
		ms, err := s.members(ctx, what, state)
		if err != nil {
			return collectionMember{}, false, err
		}
		for _, m := range ms {
			if m.ID == actor {
				return m, true, nil
			}
		}
	}
	return collectionMember{}, false, nil
}

// awaitFollower finds the Follow of follower among the acting actor's
// followers, waiting at most timeout for one that has not arrived yet: the
// follower's node delivers it a moment after it was sent.
func (s *session) awaitFollower(ctx context.Context, follower string, timeout time.Duration) (collectionMember, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, ok, err := s.find(ctx, "followers", follower)
		if err != nil || ok || time.Now().After(deadline) {
			return m, ok, err
		}
		select {
		case <-ctx.Done():
			return collectionMember{}, false, ctx.Err()
		case <-time.After(200 * time.Millisecond): // polling the node's collection, with a deadline
		}
	}
}

func runFollow(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("follow", "vultron follow ACTOR [flags]",
		"Follow an actor (Follow): it answers Accept or Reject, at once or once its admin decided.\n"+
			"ACTOR is the actor's URL. \"vultron followers --following\" shows whom the actor follows.\n"+
			followDeliveryHelp, env)
	ff := addFollowFlags(fs)
	s, err := ff.start(ctx, fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("follow takes one actor URL")
	}
	target, err := actorURL(fs.Arg(0))
	if err != nil {
		return err
	}
	act, err := vocab.NewFollow(target)
	if err != nil {
		return usageError("%v", err)
	}
	out, err := s.submit(ctx, act)
	if err != nil {
		return err
	}
	if *ff.asJSON {
		return printJSON(env, out)
	}
	id := refID(out["id"])
	return printDelivery(ctx, s, id, fmt.Sprintf("%s asked to follow %s (%s); pending until it accepts", s.as, target, id))
}

func runUnfollow(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("unfollow", "vultron unfollow ACTOR [flags]", "Stop following an actor, or withdraw a pending Follow (Undo of the Follow).\n"+followDeliveryHelp, env)
	ff := addFollowFlags(fs)
	s, err := ff.start(ctx, fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("unfollow takes one actor URL")
	}
	target, err := actorURL(fs.Arg(0))
	if err != nil {
		return err
	}
	m, ok, err := s.find(ctx, "following", target)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s does not follow %s", s.as, target)
	}
	me, err := s.me(ctx)
	if err != nil {
		return err
	}
	act, err := vocab.NewUndo(vocab.FollowInfo{ID: m.Follow, Actor: me, Object: target})
	if err != nil {
		return err
	}
	out, err := s.submit(ctx, act)
	if err != nil {
		return err
	}
	if *ff.asJSON {
		return printJSON(env, out)
	}
	return printDelivery(ctx, s, refID(out["id"]), fmt.Sprintf("%s no longer follows %s", s.as, target))
}

func runFollowers(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("followers", "vultron followers [--following] [--pending] | followers accept|reject ACTOR [flags]",
		"List the acting actor's followers, and those removed because their actor is gone, with why\n"+
			"(--pending: the Follows waiting for an admin; --following:\n"+
			"the actors it follows or asked to follow, and the Follows their servers refused for good, with\n"+
			"why; with --pending, those that have not answered), or accept or reject a pending Follow\n"+
			"(Accept or Reject of it).\n"+
			"An actor started with serve --open-followers accepts every Follow itself.\n"+
			"accept|reject: "+followDeliveryHelp, env)
	ff := addFollowFlags(fs)
	pending := fs.Bool("pending", false, "list the Follows waiting for an admin's answer")
	following := fs.Bool("following", false, "list the actors the acting actor follows, those it asked that have not answered, and those whose Follow failed")
	wait := fs.Duration("timeout", 0, "accept|reject: wait this long for a Follow that has not arrived yet (default: do not wait)")
	s, err := ff.start(ctx, fs, env, args)
	if err != nil {
		return err
	}
	if *wait < 0 {
		return usageError("--timeout must not be negative, not %s", *wait)
	}
	switch fs.Arg(0) {
	case "", "list":
		if fs.NArg() > 1 {
			return usageError("followers lists with no argument, or takes accept|reject ACTOR")
		}
		// Followers and pending Follows are two lists, since an admin
		// answers the pending ones; the followers removed because their
		// actor is gone come after the others. The actors followed are
		// one list, with the Follows still waiting for an answer after
		// the others, and the Follows that failed last.
		what, states := "followers", []string{"accepted", "gone"}
		if *following {
			what, states = "following", []string{"accepted", "pending", "failed"}
		}
		if *pending {
			states = []string{"pending"}
		}
		ms := []collectionMember{} // --json prints [] for none, not null
		for _, state := range states {
			page, err := s.members(ctx, what, state)
			if err != nil {
				return err
			}
			ms = append(ms, page...)
		}
		if *ff.asJSON {
			return printJSON(env, ms)
		}
		if len(ms) == 0 {
			return noMembers(ctx, s, *following, *pending)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTOR\tSTATE\tSINCE\tSHARED INBOX")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.State, m.Since, m.SharedInbox)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, m := range ms {
			switch m.State {
			case "failed":
				fmt.Fprintf(env.stdout, "The Follow of %s failed at %s: its delivery was given up (%s). \"vultron follow %s\" asks again.\n",
					m.ID, m.Since, m.Reason, m.ID)
			case "gone":
				fmt.Fprintf(env.stdout, "%s was removed from the followers at %s: its actor is gone (%s).\n", m.ID, m.Since, m.Reason)
			}
		}
		return nil
	case "accept", "reject":
		if fs.NArg() != 2 {
			return usageError("followers %s takes one actor URL", fs.Arg(0))
		}
		follower, err := actorURL(fs.Arg(1))
		if err != nil {
			return err
		}
		m, ok, err := s.awaitFollower(ctx, follower, *wait)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s has no Follow from %s to answer", s.as, follower)
		}
		me, err := s.me(ctx)
		if err != nil {
			return err
		}
		act, err := vocab.NewFollowAnswer(vocab.FollowInfo{ID: m.Follow, Actor: follower, Object: me}, fs.Arg(0) == "accept")
		if err != nil {
			return err
		}
		out, err := s.submit(ctx, act)
		if err != nil {
			return err
		}
		verb := map[string]string{"accept": "accepted", "reject": "rejected"}[fs.Arg(0)]
		return printDelivery(ctx, s, refID(out["id"]), fmt.Sprintf("%s %s the Follow of %s", s.as, verb, follower))
	}
	return usageError("unknown followers command %q (want list, accept or reject)", fs.Arg(0))
}

func runAnnounce(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("announce", "vultron announce URL [flags]",
		"Share an advisory (or any object) with the acting actor's followers (Announce), as a coordinator\n"+
			"shares a vendor's advisory it received.\n"+followDeliveryHelp, env)
	ff := addFollowFlags(fs)
	s, err := ff.start(ctx, fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("announce takes the URL of what it shares")
	}
	obj, err := actorURL(fs.Arg(0))
	if err != nil {
		return usageError("%q is not a URL", fs.Arg(0))
	}
	me, err := s.me(ctx)
	if err != nil {
		return err
	}
	act, err := vocab.NewAnnounce(obj, me+"/followers", vocab.PublicCollection)
	if err != nil {
		return err
	}
	out, err := s.submit(ctx, act)
	if err != nil {
		return err
	}
	if *ff.asJSON {
		return printJSON(env, out)
	}
	id := strings.TrimSpace(refID(out["id"]))
	return printDelivery(ctx, s, id, fmt.Sprintf("%s announced %s to its followers (%s)", s.as, obj, id))
}

// noMembers says that the list followers printed is empty: no followers
// (and how many Follows wait for an answer, which the list leaves out),
// no pending Follow, or no one followed.
func noMembers(ctx context.Context, s *session, following, pending bool) error {
	switch {
	case following && pending:
		return printNone(s.env, "%s waits for no answer to a Follow", s.as)
	case following:
		return printNone(s.env, "%s follows no one (vultron follow ACTOR asks to)", s.as)
	case pending:
		return printNone(s.env, "No Follow of %s waits for an answer", s.as)
	}
	waiting, err := s.members(ctx, "followers", "pending")
	if err != nil {
		return err
	}
	switch len(waiting) {
	case 0:
	case 1:
		return printNone(s.env, "%s has no followers yet; 1 Follow waits for an answer (vultron followers --pending lists it)", s.as)
	default:
		return printNone(s.env, "%s has no followers yet; %d Follows wait for an answer (vultron followers --pending lists them)", s.as, len(waiting))
	}
	return printNone(s.env, "%s has no followers", s.as)
}
