// Package node assembles one running Vultron node and is the one package
// that knows all of its parts. It opens the store, loads or creates the
// local actors, their keys and the API and metrics tokens (node.go,
// token.go), builds the inbox and outbox pipelines (with package social
// for following, and the one isAdmin check of who sees a collection's
// members), the delivery workers (whose dead letters fail the following a
// refused Follow asked for, social.FollowDeadLetter through
// store.DB.OnDeadLetter),
// the replicas' syncer and the webhooks (pipelines.go, webhooks.go), the
// deadline watcher and its metrics (deadlines.go), the threat-intelligence
// feeds (intel.go) and the automation that carries a policy out through
// the outbox, with the reloading of its file (automation.go), and
// puts the HTTP surfaces in front of them, each a package of its own that
// node fills in with what it needs (surfaces.go):
//
//	node/federation  what peers call: inboxes, actor documents, WebFinger,
//	                 NodeInfo, and the signed GETs of activities, objects,
//	                 cases and ledger pages
//	node/jsonapi     the token-authenticated JSON API of operators and the
//	                 command line; its answers are package api's types
//	node/dashboard   the web interface for people
//	node/calendar    the embargo calendars and their feed token
//	node/publication the published advisories, their documents, the CSAF
//	                 provider's files, and the owner's drafts and
//	                 publication
//
// node keeps what guards them all (authz.go and routes.go: one guard per
// route, which resolves the principal of a bearer token, a feed token or
// a dashboard session through package accounts and decides with the
// permission the route declares; the client IP, the per-IP limit in front
// of the federation routes, the audit of refusals with their principal of
// audit.go, the request log), the attribution of what a person has an
// actor send and the check that the person acts for that actor
// (surfaces.go: submit), the metrics (metrics.go), the
// operational endpoints (ops.go), the rotation of an actor's key
// (keyrotation.go), and the lifecycle: New, Serve (the HTTP server and the
// background services) and Close, which shut down in order.
//
// Invariants: routes.go registers every route with its guard (the
// dashboard's pages with the permission the dashboard lists for each),
// and TestEveryRouteDeclaresItsPermission fails for one without; the API
// token is the first admin's token (accounts.Bootstrap); a surface
// imports neither node nor another surface (arch_test.go); the tokens are
// kept only as hashes; the node holds no package-level state, so that
// several nodes run in one process.
package node
