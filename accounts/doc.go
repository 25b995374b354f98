// Package accounts owns the node's people: its users and their roles,
// their tokens, password hashes, second factors (TOTP, passkeys, recovery
// codes), dashboard sessions and the logins that open them (password,
// second factor, enrollment link, single sign-on through an OpenID
// provider), the throttling of failed logins, and the authorization
// decision every route of the node goes through (Principal.Allow).
//
// The federation's identity stays the organization's: the node's actors
// sign what travels between nodes, and people never hold an actor's key.
// A user acts for actors: a viewer reads, an analyst acts for the actors
// assigned to it (all of them when none is), an admin also manages users,
// tokens, keys, peers and webhooks. A token grants scopes (read, act,
// admin nested; metrics and calendar apart) within its user's role as the
// role is at each request; a dashboard session grants what its user's
// role does.
//
// Everything is kept in the store's accounts bucket (store.Tx.Accounts),
// sealed with the node's data key like case content, on bbolt and on
// PostgreSQL alike, as JSON records under ids and hashes: a token, a
// session id, an enrollment code and a recovery code are stored as their
// SHA-256 and never in the clear, passwords as argon2id hashes. Every
// request's look-up is a read under an index (a token's hash, a session
// id's hash, a user's id); no request walks the users or the tokens. The
// writes a request causes are bounded: a token's and a session's last use
// are written at most every few minutes, without a commit of their own.
// Expired sessions and pre-logins are removed a few at a time by the
// writes that add new ones, through indexes by expiry.
//
// What an admin does (users added, roles changed, users disabled or
// removed, tokens created or revoked, second factors reset) and every
// completed login are written to the audit log, with the principal, in
// the transaction that does it; refused logins are recorded by the node,
// within the audit log's refusal budget (node/audit.go).
//
// Invariants: the last enabled admin can be neither demoted, disabled
// nor removed; disabling a user ends its sessions and revokes its
// tokens and its enrollment link in the same transaction, and a
// disabled user's credentials are refused on every request; a
// credential never grants more than its user's current role; a
// second-factor code, a recovery code, an enrollment code and an SSO
// pre-login are each used at most once; an enrollment link sets a
// password and never opens a session that skips a second factor the
// account has, and a new link ends the sessions of the earlier ones
// (enroll.go); a session opened without a second factor never carries a
// role that needs one (loadSession); a session adds a second factor or
// recovery codes only when its login is within RecentLogin (and the
// dashboard asks RecentLogin before it makes a token for one); a
// token made by a token expires when its maker does at the latest; only
// a completed login clears a name's failures, wrong second factors
// counting among them. The package holds no package-level mutable state and
// speaks no HTTP but the WebAuthn library's and the OpenID provider's
// client calls.
package accounts
