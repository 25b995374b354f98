package jsonapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
)

// The people's endpoints: who a token is, the users (admins only: the
// node's guard checks the scope, accounts checks it again), and the
// tokens (a user's own, or an admin's of anyone). A token and an
// enrollment link are in an answer once and never again.

// maxAccountBody bounds the JSON body of a people's endpoint.
const maxAccountBody = 16 << 10

// principal returns the request's principal, which the node's guard put
// in its context.
func principal(r *http.Request) (accounts.Principal, error) {
	p, ok := accounts.PrincipalFrom(r.Context())
	if !ok {
		return accounts.Principal{}, problem.Unauthorized("this endpoint needs a token")
	}
	return p, nil
}

// readJSON decodes a bounded JSON body into v, refusing unknown fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAccountBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return problem.TooLarge("the body is larger than %d bytes", maxAccountBody)
		}
		return problem.BadRequest("the body is not the expected JSON object: %s", problem.Clip(err.Error(), 200))
	}
	if dec.More() {
		return problem.BadRequest("the body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.BadRequest("the body holds more than one JSON value")
	}
	return nil
}

// knownActor reports whether name is one of the node's configured actors.
func (e *Endpoints) knownActor(name string) bool {
	for _, a := range e.cfg.Actors() {
		if a.Name == name {
			return true
		}
	}
	return false
}

// accountsCall runs fn with the request's principal and client IP and
// answers its error, or status and the value it returns.
func (e *Endpoints) accountsCall(w http.ResponseWriter, r *http.Request, status int, fn func(p accounts.Principal, remote string) (any, error)) {
	p, err := principal(r)
	if err == nil {
		var out any
		if out, err = fn(p, e.cfg.ClientIP(r)); err == nil {
			problem.WriteJSON(w, status, out)
			return
		}
	}
	problem.Write(w, err)
}

// WhoAmI answers GET /api/whoami: the principal of the request's token.
func (e *Endpoints) WhoAmI(w http.ResponseWriter, r *http.Request) {
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, _ string) (any, error) { return api.WhoAmI(p), nil })
}

// Users answers GET /api/users?after=NAME&limit=N.
func (e *Endpoints) Users(w http.ResponseWriter, r *http.Request) {
	limit, err := httpreq.Limit(r.URL.Query(), accounts.MaxUsersPage, accounts.MaxUsersPage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	e.accountsCall(w, r, http.StatusOK, func(accounts.Principal, string) (any, error) {
		users, next, err := e.cfg.Accounts.Users(r.Context(), r.URL.Query().Get("after"), limit)
		if users == nil {
			users = []accounts.UserInfo{}
		}
		return api.UserList{Users: users, Next: next}, err
	})
}

// User answers GET /api/users/{user}.
func (e *Endpoints) User(w http.ResponseWriter, r *http.Request) {
	e.accountsCall(w, r, http.StatusOK, func(accounts.Principal, string) (any, error) {
		return e.cfg.Accounts.UserInfo(r.Context(), mux.Vars(r)["user"])
	})
}

// AddUser answers POST /api/users with the new user's first token and
// enrollment link.
func (e *Endpoints) AddUser(w http.ResponseWriter, r *http.Request) {
	var in api.NewUser
	if err := readJSON(w, r, &in); err != nil {
		problem.Write(w, err)
		return
	}
	e.accountsCall(w, r, http.StatusCreated, func(p accounts.Principal, remote string) (any, error) {
		role, err := accounts.ParseRole(in.Role)
		if err != nil {
			return nil, problem.BadRequest("%s", err.Error())
		}
		ttl, err := accounts.ParseTTL(in.TokenExpires)
		if err != nil {
			return nil, problem.BadRequest("tokenExpires: %s", err.Error())
		}
		added, err := e.cfg.Accounts.AddUser(r.Context(), p, accounts.NewUser{Name: in.Name, DisplayName: in.DisplayName, Role: role, Actors: in.Actors, TokenExpires: ttl}, e.knownActor, remote)
		if err != nil {
			return nil, err
		}
		return api.AddedUser{User: added.User.Name, Role: added.User.Role.String(), Actors: added.User.Actors, Token: added.Token,
			TokenID: added.TokenI.ID, Expires: added.TokenI.Expires.Format(time.RFC3339), Enroll: added.Enroll}, nil
	})
}

// SetRole answers POST /api/users/{user}/role.
func (e *Endpoints) SetRole(w http.ResponseWriter, r *http.Request) {
	var in api.RoleChange
	if err := readJSON(w, r, &in); err != nil {
		problem.Write(w, err)
		return
	}
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, remote string) (any, error) {
		role, err := accounts.ParseRole(in.Role)
		if err != nil {
			return nil, problem.BadRequest("%s", err.Error())
		}
		var actors []string
		if in.Actors != nil {
			actors = append([]string{}, *in.Actors...)
		}
		return e.cfg.Accounts.SetRole(r.Context(), p, mux.Vars(r)["user"], role, actors, e.knownActor, remote)
	})
}

// DisableUser answers POST /api/users/{user}/disable: the user's sessions
// and tokens end at once.
func (e *Endpoints) DisableUser(w http.ResponseWriter, r *http.Request) { e.setDisabled(w, r, true) }

// EnableUser answers POST /api/users/{user}/enable.
func (e *Endpoints) EnableUser(w http.ResponseWriter, r *http.Request) { e.setDisabled(w, r, false) }

func (e *Endpoints) setDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, remote string) (any, error) {
		return e.cfg.Accounts.SetDisabled(r.Context(), p, mux.Vars(r)["user"], disabled, remote)
	})
}

// RemoveUser answers DELETE /api/users/{user} with 204.
func (e *Endpoints) RemoveUser(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err == nil {
		err = e.cfg.Accounts.RemoveUser(r.Context(), p, mux.Vars(r)["user"], e.cfg.ClientIP(r))
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Reset2FA answers POST /api/users/{user}/reset-2fa with a new enrollment
// link.
func (e *Endpoints) Reset2FA(w http.ResponseWriter, r *http.Request) {
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, remote string) (any, error) {
		link, err := e.cfg.Accounts.Reset2FA(r.Context(), p, mux.Vars(r)["user"], remote)
		return api.EnrollLink{User: mux.Vars(r)["user"], Enroll: link}, err
	})
}

// Enroll answers POST /api/users/{user}/enroll with a new enrollment link.
func (e *Endpoints) Enroll(w http.ResponseWriter, r *http.Request) {
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, remote string) (any, error) {
		link, err := e.cfg.Accounts.Enrollment(r.Context(), p, mux.Vars(r)["user"], remote)
		return api.EnrollLink{User: mux.Vars(r)["user"], Enroll: link}, err
	})
}

// UserSessions answers GET /api/users/{user}/sessions.
func (e *Endpoints) UserSessions(w http.ResponseWriter, r *http.Request) {
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, _ string) (any, error) {
		list, err := e.cfg.Accounts.Sessions(r.Context(), p, mux.Vars(r)["user"])
		if list == nil {
			list = []accounts.SessionInfo{}
		}
		return api.SessionList{Sessions: list}, err
	})
}

// RevokeSession answers DELETE /api/users/{user}/sessions/{handle} with
// 204.
func (e *Endpoints) RevokeSession(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err == nil {
		v := mux.Vars(r)
		err = e.cfg.Accounts.RevokeSession(r.Context(), p, v["user"], v["handle"], e.cfg.ClientIP(r))
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Tokens answers GET /api/tokens?user=NAME: the caller's tokens, or an
// admin's view of a user's.
func (e *Endpoints) Tokens(w http.ResponseWriter, r *http.Request) {
	e.accountsCall(w, r, http.StatusOK, func(p accounts.Principal, _ string) (any, error) {
		list, err := e.cfg.Accounts.Tokens(r.Context(), p, r.URL.Query().Get("user"))
		if list == nil {
			list = []accounts.TokenInfo{}
		}
		return api.TokenList{Tokens: list}, err
	})
}

// CreateToken answers POST /api/tokens with the new token, shown once.
func (e *Endpoints) CreateToken(w http.ResponseWriter, r *http.Request) {
	var in api.NewToken
	if err := readJSON(w, r, &in); err != nil {
		problem.Write(w, err)
		return
	}
	e.accountsCall(w, r, http.StatusCreated, func(p accounts.Principal, remote string) (any, error) {
		scopes, err := accounts.ParseScopes(in.Scopes)
		if err != nil {
			return nil, problem.BadRequest("%s", err.Error())
		}
		ttl, err := accounts.ParseTTL(in.Expires)
		if err != nil {
			return nil, problem.BadRequest("expires: %s", err.Error())
		}
		secret, info, err := e.cfg.Accounts.CreateToken(r.Context(), p, accounts.TokenSpec{User: in.User, Scopes: scopes, Expires: ttl, Name: in.Name}, remote)
		return api.CreatedToken{Token: secret, TokenInfo: info}, err
	})
}

// RevokeToken answers DELETE /api/tokens/{id} with 204.
func (e *Endpoints) RevokeToken(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err == nil {
		err = e.cfg.Accounts.RevokeToken(r.Context(), p, mux.Vars(r)["id"], e.cfg.ClientIP(r))
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
