package accounts

import "context"

// The node's authorization middleware resolves each request's principal
// once and carries it, and for a dashboard request its session, in the
// request's context, where the handlers read them.

type principalKey struct{}

type sessionKeyCtx struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries; false when the request
// has none (an anonymous call of a public route).
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// LabelOf returns the label of the principal ctx carries (Principal.Label),
// for an audit record; "" when there is none.
func LabelOf(ctx context.Context) string {
	if p, ok := PrincipalFrom(ctx); ok {
		return p.Label()
	}
	return ""
}

// CurrentSession is a dashboard request's session: its id (the cookie's
// value) and its state.
type CurrentSession struct {
	ID    string
	State SessionState
}

// WithSession returns ctx carrying the dashboard session s.
func WithSession(ctx context.Context, s CurrentSession) context.Context {
	return context.WithValue(ctx, sessionKeyCtx{}, s)
}

// SessionFrom returns the dashboard session ctx carries.
func SessionFrom(ctx context.Context) (CurrentSession, bool) {
	s, ok := ctx.Value(sessionKeyCtx{}).(CurrentSession)
	return s, ok
}
