package node

import (
	"cmp"
	"context"
	"net/http"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/node/calendar"
	"github.com/openvultron/vultron/node/dashboard"
	"github.com/openvultron/vultron/node/federation"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/node/jsonapi"
	"github.com/openvultron/vultron/node/publication"
	"github.com/openvultron/vultron/outbox"
)

// buildSurfaces fills in the HTTP surfaces with what each needs of the
// node; routes.go puts them behind their guards.
func (n *Node) buildSurfaces() error {
	var err error
	n.federation, err = federation.New(federation.Config{
		Store:      n.db,
		Inbox:      n.inbox,
		Verifier:   n.verifier,
		Local:      n.LocalActor,
		LocalByID:  n.localByID,
		Authorized: n.reads,
		Admin:      n.isAdmin,
		Refused:    n.federationRefused,
		Withheld:   n.withheld,
		PublicURL:  n.cfg.PublicURL,
		Host:       n.host,
		Version:    n.cfg.Version,
		Now:        n.cfg.Now,
	})
	if err != nil {
		return err
	}
	n.jsonapi, err = jsonapi.New(jsonapi.Config{
		Store:       n.db,
		Submit:      n.submit,
		Resync:      n.engine.Resync,
		Local:       n.LocalActor,
		Actors:      n.configuredActors,
		Accounts:    n.accounts,
		ClientIP:    n.clientIP,
		RotateKey:   n.rotateKey,
		Wake:        n.deliverer.Wake,
		MaxBody:     n.cfg.MaxInboxBytes,
		Refused:     n.refused,
		PublicURL:   n.cfg.PublicURL,
		Deadlines:   n.deadlines,
		IsLocal:     n.isLocal,
		Automation:  n.automation,
		Webhooks:    n.webhooks,
		BackupDir:   n.backupDir,
		BackupStall: n.cfg.BackupStallTimeout,
		Now:         n.cfg.Now,
		Logger:      n.cfg.Logger,
	})
	if err != nil {
		return err
	}
	n.calendar, err = calendar.New(calendar.Config{
		Store:     n.db,
		PublicURL: n.cfg.PublicURL,
		Host:      n.host,
		Version:   n.cfg.Version,
		FeedKey:   n.token.sum[:],
		Now:       n.cfg.Now,
		Logger:    n.cfg.Logger,
	})
	if err != nil {
		return err
	}
	n.publication, err = publication.New(publication.Config{
		Store:     n.db,
		PublicURL: n.cfg.PublicURL,
		LocalByID: n.localByID,
		Roles:     n.roles,
		Submit: func(ctx context.Context, name string, body []byte) (string, error) {
			s, err := n.submit(ctx, name, body)
			return s.ID, err
		},
		CaseID:  func(r *http.Request) (string, error) { return httpreq.CaseID(r, n.db) },
		Version: n.cfg.Version,
		Now:     n.cfg.Now,
	})
	if err != nil {
		return err
	}
	n.dashboard, err = dashboard.New(dashboard.Config{
		Store:        n.db,
		Webhooks:     n.webhooks.Webhooks,
		Submit:       n.submit,
		Resync:       n.engine.Resync,
		Local:        n.LocalActor,
		LocalByID:    n.localByID,
		IsLocal:      n.isLocal,
		FetchActor:   n.fetchActor,
		Accounts:     n.accounts,
		LoginRefused: n.loginRefused,
		Denied:       n.denied,
		FormRefused:  n.formRefused,
		ClientIP:     n.clientIP,
		CalendarURL:  n.calendar.URL,
		Refused:      n.refused,
		PublicURL:    n.cfg.PublicURL,
		MaxBody:      n.cfg.MaxInboxBytes,
		Stopping:     n.stopping,
		Deadlines:    n.deadlines,
		Now:          n.cfg.Now,
		Logger:       n.cfg.Logger,
	})
	if err != nil {
		return err
	}
	n.services = append(n.services, service{name: "dashboard-names", run: n.dashboard.Run})
	return nil
}

// submit has local actor name send body on behalf of the request's
// principal (the authorization middleware put it in ctx), which must act
// for that actor: it is the one way from a person to an outbox (the API's
// outbox, the dashboard's forms, an advisory's publication as the case's
// owner), so an analyst's actors are checked here whatever the route
// checked. The user's name is kept with the stored activity and its audit
// record, and with Config.AttributeNames their display name travels with
// the activity (outbox.By). What the node does on its own (automation)
// carries no principal and sends on the node's behalf.
func (n *Node) submit(ctx context.Context, name string, body []byte) (outbox.Submitted, error) {
	var by outbox.By
	if p, ok := accounts.PrincipalFrom(ctx); ok {
		if err := p.Allow(accounts.Permission{Scope: accounts.ScopeAct, ActorVar: "actor"}, name); err != nil {
			return outbox.Submitted{}, err
		}
	}
	if p, ok := accounts.PrincipalFrom(ctx); ok && p.User != "" {
		by.Name = p.Name
		if n.cfg.AttributeNames {
			by.DisplayName = cmp.Or(p.DisplayName, p.Name)
		}
	}
	return n.submitter.SubmitBy(ctx, name, body, by)
}
