package api

import "github.com/openvultron/vultron/accounts"

// The people of a node (package accounts): its users, their tokens and
// sessions, and who a request is made by. What accounts defines as JSON
// (a principal, a user's, a token's and a session's description) is used
// as it is.

// WhoAmI is GET /api/whoami: the principal of the request's token.
type WhoAmI = accounts.Principal

// UserInfo is a user as lists show it: no secret, no hash.
type UserInfo = accounts.UserInfo

// TokenInfo is a token as lists show it: never the token.
type TokenInfo = accounts.TokenInfo

// SessionInfo is a dashboard session as lists show it: never its id.
type SessionInfo = accounts.SessionInfo

// NewUser is the body of POST /api/users.
type NewUser struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	// Role is viewer, analyst or admin.
	Role string `json:"role"`
	// Actors are the node's actors an analyst acts for; none means all.
	Actors []string `json:"actors,omitempty"`
	// TokenExpires is how long the user's first token lasts ("90d",
	// "720h"); empty means 90 days.
	TokenExpires string `json:"tokenExpires,omitempty"`
}

// AddedUser is the answer to POST /api/users, shown once: the user's
// first token and the link that sets its password and second factor.
type AddedUser struct {
	User    string   `json:"user"`
	Role    string   `json:"role"`
	Actors  []string `json:"actors,omitempty"`
	Token   string   `json:"token"`
	TokenID string   `json:"tokenId"`
	Expires string   `json:"tokenExpires,omitempty"`
	Enroll  string   `json:"enroll"`
}

// UserList is GET /api/users: a page of users in name order; next is the
// after= of the next page, "" at the end.
type UserList struct {
	Users []UserInfo `json:"users"`
	Next  string     `json:"next,omitempty"`
}

// RoleChange is the body of POST /api/users/{user}/role. Actors, when
// given (even empty), replaces the actors an analyst acts for.
type RoleChange struct {
	Role   string    `json:"role"`
	Actors *[]string `json:"actors,omitempty"`
}

// EnrollLink is the answer to POST /api/users/{user}/reset-2fa and
// /enroll: a new enrollment link, shown once.
type EnrollLink struct {
	User   string `json:"user"`
	Enroll string `json:"enroll"`
}

// NewToken is the body of POST /api/tokens.
type NewToken struct {
	// User names the user the token is for; empty for the caller's own.
	User string `json:"user,omitempty"`
	// Scopes are read, act, admin, metrics, calendar, comma-separated.
	Scopes string `json:"scopes"`
	// Expires is how long it lasts ("90d", "720h"); empty means 90 days.
	Expires string `json:"expires,omitempty"`
	Name    string `json:"name,omitempty"`
}

// CreatedToken is the answer to POST /api/tokens: the token, shown once,
// and what lists show of it.
type CreatedToken struct {
	Token string `json:"token"`
	TokenInfo
}

// TokenList is GET /api/tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// SessionList is GET /api/users/{user}/sessions, oldest first.
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}
