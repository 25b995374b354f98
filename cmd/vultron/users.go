package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
)

// The people of a node: its users (admins manage them) and tokens. Each
// command is one call of the node's API (/api/users, /api/tokens); the
// node decides, and a refusal is its sentence.

// feedRetired is what disabling or removing a user also does: the node
// rotates the calendar feed token, which every user who reads may have
// copied, so every subscribed feed URL stops working.
const feedRetired = "the calendar feed URLs changed too (the old ones answer 401): vultron calendar prints the new ones for calendar clients"

func runUser(ctx context.Context, env *environment, args []string) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("user", "vultron user add NAME --role viewer|analyst|admin [--actor A]... [--display-name TEXT] [--json]\n"+
		"       vultron user list [--json]\n"+
		"       vultron user role NAME ROLE [--actor A]... [--all-actors]\n"+
		"       vultron user disable|enable|remove|reset-2fa|enroll NAME\n"+
		"       vultron user sessions [NAME] [--revoke HANDLE]   (no NAME: yours)",
		"Manage the node's users (an admin's token is needed). A viewer reads; an analyst\n"+
			"acts for the actors given with --actor (all of the node's when none is); an admin\n"+
			"also manages users, tokens, keys, peers and webhooks.\n\n"+
			"add prints, once, the user's first token (its scopes those of its role) and an\n"+
			"enrollment link with which the person sets a dashboard password and a second\n"+
			"factor. disable ends the user's sessions and revokes its tokens and its\n"+
			"enrollment link at once; enable lets it log in again. remove deletes it. Both\n"+
			"disable and remove also retire the calendar feed URLs (vultron calendar prints\n"+
			"the new ones), which every user who reads may have copied.\n"+
			"reset-2fa removes its second factors (a lost device) and ends its sessions, and\n"+
			"enroll gives a new enrollment link; both print the link. The node's last\n"+
			"enabled admin cannot be demoted, disabled or removed.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	role := fs.String("role", "", "role of a new user: viewer, analyst or admin")
	var actorsFlag listFlag
	fs.Var(&actorsFlag, "actor", "an actor of the node the analyst acts for (repeatable; none: all)")
	allActors := fs.Bool("all-actors", false, "with role: the analyst acts for every actor of the node")
	display := fs.String("display-name", "", "the person's name as pages show it")
	tokenExpires := fs.String("token-expires", "90d", "how long the new user's first token lasts")
	revoke := fs.String("revoke", "", "with sessions: end the session with this handle")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	needName := func(n int) error {
		if fs.NArg() != n || name == "" {
			return usageError("user %s takes %s", sub, map[int]string{1: "a user name", 2: "a user name and a role"}[n])
		}
		return nil
	}
	path := "/api/users/" + url.PathEscape(name)
	switch sub {
	case "add":
		if err := needName(1); err != nil {
			return err
		}
		if *role == "" {
			return usageError("give the new user a role with --role viewer, analyst or admin")
		}
		if _, err := accounts.ParseRole(*role); err != nil {
			return usageError("--role: %v", err)
		}
		if _, err := accounts.ParseTTL(*tokenExpires); err != nil {
			return usageError("--token-expires: %v", err)
		}
		var out api.AddedUser
		in := api.NewUser{Name: name, DisplayName: *display, Role: *role, Actors: actorsFlag, TokenExpires: *tokenExpires}
		if err := c.call(ctx, http.MethodPost, "/api/users", in, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		fmt.Fprintf(env.stdout, "user %s added as %s%s\n", out.User, out.Role, forActors(out.Actors))
		fmt.Fprintf(env.stdout, "token %s (shown once; expires %s): %s\n", out.TokenID, out.Expires, out.Token)
		fmt.Fprintf(env.stdout, "enrollment link for the dashboard (shown once; valid 7 days): %s\n", out.Enroll)
		return nil
	case "list":
		if fs.NArg() != 0 {
			return usageError("user list takes no arguments")
		}
		users := []api.UserInfo{}
		for after := ""; ; {
			var page api.UserList
			if err := c.call(ctx, http.MethodGet, "/api/users?after="+url.QueryEscape(after), nil, &page); err != nil {
				return err
			}
			users = append(users, page.Users...)
			if after = page.Next; after == "" {
				break
			}
		}
		if *asJSON {
			return printJSON(env, users)
		}
		if len(users) == 0 {
			return printNone(env, "No users (vultron user add NAME adds one)")
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tROLE\tACTORS\tSTATE\tSECOND FACTOR\tLAST LOGIN")
		for _, u := range users {
			state := "enabled"
			switch {
			case u.Disabled:
				state = "disabled"
			case u.Enrolling:
				state = "enrolling"
			}
			factor := factorsOf(u)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, orAll(u.Actors), state, factor, whenOrNever(u.LastLogin))
		}
		return tw.Flush()
	case "role":
		if err := needName(2); err != nil {
			return err
		}
		if _, err := accounts.ParseRole(fs.Arg(1)); err != nil {
			return usageError("%v", err)
		}
		in := api.RoleChange{Role: fs.Arg(1)}
		switch {
		case *allActors && len(actorsFlag) > 0:
			return usageError("give --actor or --all-actors, not both")
		case *allActors:
			in.Actors = &[]string{}
		case len(actorsFlag) > 0:
			a := []string(actorsFlag)
			in.Actors = &a
		}
		var out api.UserInfo
		if err := c.call(ctx, http.MethodPost, path+"/role", in, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		fmt.Fprintf(env.stdout, "user %s is %s%s\n", out.Name, out.Role, forActors(out.Actors))
		return nil
	case "disable", "enable":
		if err := needName(1); err != nil {
			return err
		}
		var out api.UserInfo
		if err := c.call(ctx, http.MethodPost, path+"/"+sub, nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		if out.Disabled {
			fmt.Fprintf(env.stdout, "user %s disabled: its sessions ended, its tokens and its enrollment link are revoked\n%s\n", out.Name, feedRetired)
		} else {
			fmt.Fprintf(env.stdout, "user %s enabled: it logs in again, and needs new tokens (and a new link, vultron user enroll, if it had not enrolled)\n", out.Name)
		}
		return nil
	case "remove":
		if err := needName(1); err != nil {
			return err
		}
		if err := c.call(ctx, http.MethodDelete, path, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "user %s removed: its sessions ended, its tokens and its enrollment link are revoked\n%s\n", name, feedRetired)
		return nil
	case "reset-2fa", "enroll":
		if err := needName(1); err != nil {
			return err
		}
		var out api.EnrollLink
		if err := c.call(ctx, http.MethodPost, path+"/"+sub, nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		if sub == "reset-2fa" {
			fmt.Fprintf(env.stdout, "the second factors of %s are removed and its sessions ended\n", name)
		}
		fmt.Fprintf(env.stdout, "enrollment link for %s (shown once; valid 7 days): %s\n", name, out.Enroll)
		return nil
	case "sessions":
		if fs.NArg() > 1 {
			return usageError("user sessions takes a user name, or none for yours")
		}
		if name == "" {
			// One's own sessions, as token list lists one's own tokens:
			// the user whose token the command carries.
			var who api.WhoAmI
			if err := c.call(ctx, http.MethodGet, "/api/whoami", nil, &who); err != nil {
				return err
			}
			if who.User == "" {
				return usageError("user sessions takes a user name: the token the command carries is %s's, which has no sessions", who.Name)
			}
			name = who.Name
			path = "/api/users/" + url.PathEscape(name)
		}
		if *revoke != "" {
			if err := c.call(ctx, http.MethodDelete, path+"/sessions/"+url.PathEscape(*revoke), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "session %s of %s ended\n", *revoke, name)
			return nil
		}
		var out api.SessionList
		if err := c.call(ctx, http.MethodGet, path+"/sessions", nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out.Sessions)
		}
		if len(out.Sessions) == 0 {
			return printNone(env, "%s has no dashboard sessions", name)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HANDLE\tSINCE\tLAST REQUEST\tHOW\tFROM")
		for _, s := range out.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Handle, s.Created.Format(time.RFC3339), s.LastSeen.Format(time.RFC3339), s.Method, s.Remote)
		}
		return tw.Flush()
	case "":
		return usageError("user needs a command: add, list, role, disable, enable, remove, reset-2fa, enroll or sessions")
	default:
		return usageError("unknown user command %q (want add, list, role, disable, enable, remove, reset-2fa, enroll or sessions)", sub)
	}
}

func forActors(actors []string) string {
	if len(actors) == 0 {
		return ""
	}
	return " for " + strings.Join(actors, ", ")
}

func orAll(actors []string) string {
	if len(actors) == 0 {
		return "(all)"
	}
	return strings.Join(actors, ",")
}

func factorsOf(u api.UserInfo) string {
	var f []string
	if u.TOTP {
		f = append(f, "app")
	}
	if u.Passkeys > 0 {
		f = append(f, fmt.Sprintf("%d passkeys", u.Passkeys))
	}
	if u.SSO != "" {
		f = append(f, "sso")
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, "+")
}

func whenOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func runToken(ctx context.Context, env *environment, args []string) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("token", "vultron token create --scope S[,S]... [--user NAME] [--expires 90d] [--name N] [--json]\n"+
		"       vultron token list [--user NAME] [--json]\n"+
		"       vultron token revoke ID",
		"Tokens of the node's users. A scope says what a token may do: read, act (also\n"+
			"reads), admin (also acts), metrics (GET /metrics only), calendar (the embargo\n"+
			"feeds only), within its user's role. create prints the token once; the node keeps\n"+
			"only its hash. A token creates tokens of its own user with the scopes it holds;\n"+
			"an admin's, for any user, with the scopes that user's role holds.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	var scopeFlag listFlag
	fs.Var(&scopeFlag, "scope", "the token's scopes: read, act, admin, metrics, calendar (comma-separated or repeated)")
	user := fs.String("user", "", "the user the token is for (default: yours)")
	expires := fs.String("expires", "90d", "how long the token lasts (90d, 720h)")
	name := fs.String("name", "", "what the token is for, as lists show it")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if fs.NArg() != 0 {
			return usageError("token create takes no arguments")
		}
		scopes, err := accounts.ParseScopes(strings.Join(scopeFlag, ","))
		if err != nil {
			return usageError("--scope: %v", err)
		}
		if _, err := accounts.ParseTTL(*expires); err != nil {
			return usageError("--expires: %v", err)
		}
		var out api.CreatedToken
		if err := c.call(ctx, http.MethodPost, "/api/tokens", api.NewToken{User: *user, Scopes: scopes.String(), Expires: *expires, Name: *name}, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		fmt.Fprintf(env.stdout, "token %s of %s with %s, expires %s (shown once): %s\n", out.ID, out.User, out.Scopes, out.Expires.Format(time.RFC3339), out.Token)
		return nil
	case "list":
		if fs.NArg() != 0 {
			return usageError("token list takes no arguments")
		}
		var out api.TokenList
		if err := c.call(ctx, http.MethodGet, "/api/tokens?user="+url.QueryEscape(*user), nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out.Tokens)
		}
		if len(out.Tokens) == 0 {
			if *user != "" {
				return printNone(env, "%s has no tokens", *user)
			}
			return printNone(env, "No tokens")
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tSCOPES\tEXPIRES\tLAST USED\tNAME")
		for _, t := range out.Tokens {
			exp := "never"
			if !t.Expires.IsZero() {
				exp = t.Expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Scopes, exp, whenOrNever(t.LastUsed), t.Name)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageError("token revoke takes a token id (token list shows them)")
		}
		if err := c.call(ctx, http.MethodDelete, "/api/tokens/"+url.PathEscape(fs.Arg(0)), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "token %s revoked\n", fs.Arg(0))
		return nil
	case "":
		return usageError("token needs a command: create, list or revoke")
	default:
		return usageError("unknown token command %q (want create, list or revoke)", sub)
	}
}
