package node

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/store"
)

// TestDashboardFormForAnotherActorIsAuditedRefusal: an analyst's form
// that acts as an actor the analyst is not assigned (a forged one: the
// pages offer only the analyst's actors) is refused with 403, as the same
// request through the API is, and the refusal is in the audit log with
// the analyst and the actor, for a report's decision and for a case's
// action alike.
func TestDashboardFormForAnotherActorIsAuditedRefusal(t *testing.T) {
	vendor := startNode(t, "vendor:Organization", "coordinator:Organization")
	cora := newBrowser(t, vendor.url)
	cora.loginAs("cora", vendor.person(t, "cora", accounts.Analyst, "coordinator"))
	page := cora.get("/")
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/ui/reports/validate", url.Values{"report": {"r-1"}, "decision": {"validate"}}},
	} {
		tc.form.Set("csrf", csrfOf(t, page))
		tc.form.Set("as", "vendor")
		resp, body := cora.do(http.MethodPost, tc.path, tc.form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cora does not act for vendor") {
			t.Errorf("POST %s as vendor: %d %s\n%s", tc.path, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		found := false
		for _, rec := range vendor.auditRecords(t) {
			if rec.Decision == store.DecisionRefused && strings.HasPrefix(rec.Principal, "cora via session") && strings.Contains(rec.Reason, "cora does not act for vendor") {
				found = true
			}
		}
		if !found {
			t.Errorf("POST %s as vendor: no refusal in the audit log naming cora and vendor", tc.path)
		}
	}
}

// TestDashboardFormRefusalsAreAudited: a form the node refuses is shown as
// a message on the next page (the form's answer is a redirect), and the
// refusal is in the audit log with who sent it and why, as the same
// request refused through the API is: a wrong current password on the
// account page (someone at a browser left logged in, guessing), and an
// action on a case the node does not hold.
func TestDashboardFormRefusalsAreAudited(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	cora := newBrowser(t, vendor.url)
	cora.loginAs("cora", vendor.person(t, "cora", accounts.Analyst, "vendor"))
	for _, tc := range []struct {
		name, path string
		form       url.Values
		reason     string
	}{
		{"wrong current password", "/ui/account", url.Values{"action": {"password"}, "current": {"not cora's password"},
			"password": {"a new password of cora"}, "password2": {"a new password of cora"}}, "password"},
		{"a case action the node refuses", "/ui/reports/validate", url.Values{"report": {"https://finder.example/reports/none"}, "decision": {"validate"}, "as": {"vendor"}}, "report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastAuditSeq(t, vendor.db)
			tc.form.Set("csrf", csrfOf(t, cora.get("/ui/account")))
			resp, body := cora.do(http.MethodPost, tc.path, tc.form)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST %s: %d, want the redirect to the page that shows the refusal\n%s", tc.path, resp.StatusCode, body)
			}
			if page := cora.get(resp.Header.Get("Location")); !strings.Contains(page, "Refused") {
				t.Errorf("the next page does not show the refusal:\n%s", page)
			}
			found := false
			for _, rec := range auditAfter(t, vendor.db, seq) {
				if rec.Decision == store.DecisionRefused && strings.HasPrefix(rec.Principal, "cora via session") && strings.Contains(strings.ToLower(rec.Reason), tc.reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("POST %s: no refusal in the audit log naming cora and the %s: %+v", tc.path, tc.reason, auditAfter(t, vendor.db, seq))
			}
		})
	}
}
