package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/internal/urlsecret"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/webhook"
)

// The node's automation: the policy (package rules) that decides routine
// protocol steps for its actors, carried out by automation.Engine through
// the same outbox as a person's action, reloaded when its file changes or
// on a signal, and explained on request.

// buildAutomation starts the automation engine with the configured
// policy, and the reloading of its file.
func (n *Node) buildAutomation(ctx context.Context) error {
	var secret []byte
	if len(n.cfg.Webhooks) > 0 {
		path := n.cfg.WebhookSecretFile
		if path == "" {
			path = filepath.Join(n.cfg.DataDir, "webhook-secret")
		}
		if s, err := os.ReadFile(path); err == nil {
			secret = []byte(strings.TrimSpace(string(s)))
		}
	}
	notifyClient := newNotifyClient()
	e, err := automation.New(automation.Config{
		DB: n.db,
		Locals: func() []automation.Local {
			var out []automation.Local
			for _, name := range n.order {
				if l, ok := n.Local(name); ok {
					out = append(out, automation.Local{Name: l.Name, ID: l.ID})
				}
			}
			return out
		},
		Submit: func(ctx context.Context, name string, act map[string]any) (string, error) {
			act["@context"] = "https://www.w3.org/ns/activitystreams"
			body, err := json.Marshal(act)
			if err != nil {
				return "", fmt.Errorf("automation: encode %s: %w", act["type"], err)
			}
			s, err := n.submitter.Submit(ctx, name, body)
			if err != nil {
				return "", err
			}
			return s.ID, nil
		},
		Notify: func(ctx context.Context, url string, note automation.Notification) error {
			return postNotification(ctx, notifyClient, url, secret, n.cfg.Now(), note)
		},
		Now:      n.cfg.Now,
		Interval: n.cfg.AutomationInterval,
		Logger:   n.log,
	})
	if err != nil {
		return err
	}
	n.automation = e
	e.SetPolicy(n.cfg.Policy)
	n.unknownOff(n.cfg.Policy)
	n.deadlineHooks = append(n.deadlineHooks, func(context.Context, deadline.Notice) { e.Wake() })
	n.intelHooks = append(n.intelHooks, func(context.Context, intel.Match) { e.Wake() })
	if err := e.Init(ctx); err != nil {
		return fmt.Errorf("automation: %w", err)
	}
	n.services = append(n.services, service{name: "automation", run: e.Run})
	if n.cfg.PolicyFile != "" {
		// The file as it is now is the one the policy in force was read
		// from: a change from here on, before the node serves too, is a
		// change to reload.
		last := policyStamp(n.cfg.PolicyFile)
		n.services = append(n.services, service{name: "policy-reload", run: func(ctx context.Context) error { return n.watchPolicy(ctx, last) }})
	}
	return nil
}

// newNotifyClient returns the client that posts the rules'
// notifications. It follows no redirect: a receiver that answers one has
// not taken the notification, and following it would post it to another
// address or turn the POST into a GET whose 200 would count as taken.
func newNotifyClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postNotification posts a rule's notification, signed as the node's
// webhooks are when it has a webhook secret. One attempt: a durable feed
// is the webhooks'.
func postNotification(ctx context.Context, c *http.Client, url string, secret []byte, now time.Time, note automation.Notification) error {
	body, err := json.Marshal(note)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return problem.Unprocessable("notify: the URL %s does not make a request", urlsecret.Shown(url))
	}
	// The sentences below go to the audit log and the node's log: they
	// name the URL without its password.
	shown := urlsecret.Shown(url)
	req.Header.Set("Content-Type", "application/json")
	if secret != nil {
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, body, now))
	}
	resp, err := c.Do(req)
	if err != nil {
		// The sentence says why, naming the URL once, as shown: the
		// client's error names it again, with its query.
		why := urlsecret.HideIn(err, req.URL)
		return problem.Wrap(http.StatusBadGateway, why, fmt.Sprintf("notify %s failed: %v", shown, why))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return problem.New(http.StatusBadGateway, "notify %s: the receiver answered %s", shown, resp.Status)
	}
	return nil
}

// ReadPolicy reads and checks a policy file, refusing one too large
// before reading it all.
func ReadPolicy(path string) (*rules.Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, rules.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return rules.Parse(data, path)
}

// watchPolicy reloads the policy file when it changes (its modification
// time or size, checked every PolicyCheck) or when PolicyReload fires (a
// SIGHUP). A file that does not parse is refused whole: the policy in
// force stays, and the refusal is logged and audited with its line and
// reason.
// last is the file's policyStamp when the policy in force was read.
func (n *Node) watchPolicy(ctx context.Context, last string) error {
	t := time.NewTicker(n.cfg.PolicyCheck)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.cfg.PolicyReload:
			forced = true
		}
		now := policyStamp(n.cfg.PolicyFile)
		if now == last && !forced {
			continue
		}
		last = now
		n.reloadPolicy(ctx)
	}
}

// policyStamp says when the file at path last changed and how large it is;
// a change of either is a change of the file.
func policyStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprint(st.ModTime().UnixNano(), st.Size())
}

// unknownOff says which names of p's off list are no actor of the node,
// and logs it: such a name (a misspelt one) turns automation off for no
// one. It returns "" when every name is an actor's.
func (n *Node) unknownOff(p *rules.Policy) string {
	if p == nil {
		return ""
	}
	var unknown []string
	for _, name := range p.Off {
		if _, ok := n.Local(name); !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	w := fmt.Sprintf("off names %s, which is no actor of this node (its actors: %s)", strings.Join(unknown, ", "), strings.Join(n.order, ", "))
	if len(unknown) > 1 {
		w = fmt.Sprintf("off names %s, which are no actors of this node (its actors: %s)", strings.Join(unknown, ", "), strings.Join(n.order, ", "))
	}
	n.log.Warn().Str("policy", p.Name).Strs("unknown", unknown).Msg("policy: " + w)
	return w
}

// reloadPolicy reads the policy file again and puts it in force, or keeps
// the one in force when the file is refused.
func (n *Node) reloadPolicy(ctx context.Context) {
	p, err := ReadPolicy(n.cfg.PolicyFile)
	rec := store.AuditRecord{Kind: store.AuditAdmin, Actor: "policy", Decision: store.DecisionDone}
	if err != nil {
		n.log.Error().Err(err).Msg("policy: the changed file is refused; the policy in force stays")
		rec.Decision, rec.Reason = store.DecisionRefused, "reload "+n.cfg.PolicyFile+": "+err.Error()
	} else {
		n.automation.SetPolicy(p)
		n.log.Info().Str("policy", p.Name).Int("rules", len(p.Rules)).Msg("policy: reloaded")
		rules := "1 rule"
		if len(p.Rules) != 1 {
			rules = fmt.Sprintf("%d rules", len(p.Rules))
		}
		rec.Reason = fmt.Sprintf("reload %s: policy %s, %s", n.cfg.PolicyFile, p.Name, rules)
		if w := n.unknownOff(p); w != "" {
			rec.Reason += "; " + w
		}
	}
	if err := n.db.Audit(ctx, rec); err != nil && ctx.Err() == nil {
		n.log.Error().Err(err).Msg("policy: audit the reload")
	}
}
