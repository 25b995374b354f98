package node

import (
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/openvultron/vultron/webhook"
)

// buildWebhooks creates the webhook dispatcher. Without webhooks it still
// runs, to prune the change feed.
// webhookSecretFile is the default name, inside the data directory, of the
// file that holds the webhook signing secret.
const webhookSecretFile = "webhook-secret"

func (n *Node) buildWebhooks() error {
	var secret []byte
	if len(n.cfg.Webhooks) > 0 {
		for _, u := range n.cfg.Webhooks {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
				return fmt.Errorf("webhook %q is not an http or https URL", u)
			}
		}
		path := n.cfg.WebhookSecretFile
		if path == "" {
			path = filepath.Join(n.cfg.DataDir, webhookSecretFile)
		}
		s, _, err := loadOrCreateSecret(path, "webhook secret")
		if err != nil {
			return err
		}
		secret = []byte(s)
	}
	d, err := webhook.New(webhook.Config{
		DB:      n.db,
		URLs:    n.cfg.Webhooks,
		Secret:  secret,
		Policy:  n.cfg.Retry,
		Logger:  n.log,
		Now:     n.cfg.Now,
		Node:    n.cfg.PublicURL,
		Version: n.cfg.Version,
	})
	if err != nil {
		return err
	}
	n.webhooks = d
	n.services = append(n.services, service{name: "webhooks", run: d.Run, leader: true})
	return nil
}
