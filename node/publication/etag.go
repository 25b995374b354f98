package publication

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/openvultron/vultron/problem"
)

// serveBody answers a GET with body, of media type contentType, under a
// strong ETag that is the SHA-256 of the body: what CSAF aggregators and
// feed readers poll (the provider metadata, the ROLIE feed, index.txt and
// changes.csv, the documents and their hashes) is asked again with
// If-None-Match and answered 304, with no body, while it is unchanged.
// net/http's ServeContent does the conditional and range handling; no
// Last-Modified is sent, since two revisions within one second would share
// it. A cache may keep the answer for a minute and must ask again after.
func serveBody(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	sum := sha256.Sum256(body)
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:18])+`"`)
	h.Set("Cache-Control", "public, max-age=60, must-revalidate")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// serveJSON answers a GET with v as JSON (as problem.WriteJSON writes it)
// through serveBody.
func serveJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		problem.Write(w, err)
		return
	}
	serveBody(w, r, "application/json", append(body, '\n'))
}
