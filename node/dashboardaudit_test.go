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
