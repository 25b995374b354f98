package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// TestAWriteTheStoreCouldNotTakeIsNotAuditedAsARefusal: a request of the
// API answered with the store's failure (507 on a full disk), as its
// handlers answer it (problem.Write, without the node's refused), is the
// node's own failure, not a refusal of the request: it is not audited,
// as an inbox POST the store could not take is not. It was, and each
// one logged that its record could not be written and was counted in a
// later summary as a refusal of the client. A refusal of the request is
// still audited.
func TestAWriteTheStoreCouldNotTakeIsNotAuditedAsARefusal(t *testing.T) {
	n := newIdleNode(t, Config{})
	full := &store.UnavailableError{Reason: "the node's disk is full", Full: true, Err: syscall.ENOSPC}
	for _, tt := range []struct {
		name    string
		err     error
		audited bool
	}{
		{"the store's failure", fmt.Errorf("jsonapi: add a note: %w", full), false},
		{"a refusal", problem.Forbidden("not a participant of the case"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(auditAfter(t, n.db, 0))
			h := n.auditRefusals(store.AuditAdmin, func(w http.ResponseWriter, r *http.Request) { problem.Write(w, tt.err) })
			rec := httptest.NewRecorder()
			h(rec, httptest.NewRequest(http.MethodPost, "/api/cases/c1/notes", nil))
			if rec.Code != problem.Status(tt.err) {
				t.Fatalf("answered %d, want %d", rec.Code, problem.Status(tt.err))
			}
			n.audit.flush(context.Background(), true)
			recs := auditAfter(t, n.db, 0)[before:]
			if tt.audited && len(recs) != 1 {
				t.Errorf("%d audit records of a refusal answered %d, want 1: %+v", len(recs), rec.Code, recs)
			}
			if !tt.audited && len(recs) != 0 {
				t.Errorf("a request answered %d with the store's failure is audited as a refusal: %+v", rec.Code, recs)
			}
		})
	}
}
