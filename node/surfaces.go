package node

import (
	"github.com/openvultron/vultron/node/calendar"
	"github.com/openvultron/vultron/node/dashboard"
	"github.com/openvultron/vultron/node/federation"
	"github.com/openvultron/vultron/node/jsonapi"
)

// buildSurfaces fills in the HTTP surfaces with what each needs of the
// node; routes.go puts them behind their guards.
func (n *Node) buildSurfaces() error {
	var err error
	n.federation, err = federation.New(federation.Config{
		Store:      n.db,
		Inbox:      n.inbox,
		Verifier:   n.verifier,
		Local:      n.Local,
		LocalByID:  n.localByID,
		Authorized: n.reads,
		Refused:    n.federationRefused,
		PublicURL:  n.cfg.PublicURL,
		Host:       n.host,
		Version:    n.cfg.Version,
		Now:        n.cfg.Now,
	})
	if err != nil {
		return err
	}
	n.jsonapi, err = jsonapi.New(jsonapi.Config{
		Store:      n.db,
		Submit:     n.submitter.Submit,
		Resync:     n.engine.Resync,
		Local:      n.Local,
		Actors:     n.configuredActors,
		Accounts:   n.accounts,
		ClientIP:   n.clientIP,
		RotateKey:  n.rotateKey,
		Wake:       n.deliverer.Wake,
		MaxBody:    n.cfg.MaxInboxBytes,
		Refused:    n.refused,
		PublicURL:  n.cfg.PublicURL,
		Deadlines:  n.deadlines,
		IsLocal:    n.isLocal,
		Automation: n.automation,
		Now:        n.cfg.Now,
		Logger:     n.cfg.Logger,
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
	n.dashboard, err = dashboard.New(dashboard.Config{
		Store:        n.db,
		Submit:       n.submitter.Submit,
		Resync:       n.engine.Resync,
		Local:        n.Local,
		LocalByID:    n.localByID,
		IsLocal:      n.isLocal,
		FetchActor:   n.fetchActor,
		Accounts:     n.accounts,
		LoginRefused: n.loginRefused,
		ClientIP:     n.clientIP,
		CalendarURL:  n.calendar.URL,
		Refused:      n.refused,
		PublicURL:    n.cfg.PublicURL,
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
