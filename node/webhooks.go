package node

import (
	"path/filepath"

	"github.com/openvultron/vultron/webhook"
)

// webhookSecretFile is the default name, inside the data directory, of the
// file that holds the webhook signing secret.
const webhookSecretFile = "webhook-secret"

// buildWebhooks creates the webhook dispatcher (Config.validate checked
// its URLs). Without webhooks it still runs, to prune the change feed.
func (n *Node) buildWebhooks() error {
	var secret []byte
	if len(n.cfg.Webhooks) > 0 {
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
