package api

import "time"

// Report is a local actor's record of a report, as GET /api/reports lists
// it and GET /api/reports/{id} shows it.
type Report struct {
	ID      string `json:"id"`
	ShortID string `json:"shortId"`
	Offer   string `json:"offer"`
	// Actor is the local actor whose record this is, and Role its part:
	// "receiver" or "reporter".
	Actor    string    `json:"actor"`
	Role     string    `json:"role"`
	Reporter string    `json:"reporter"`
	Received time.Time `json:"received"`
	Name     string    `json:"name"`
	RMState  string    `json:"rmState"`
	Case     string    `json:"case,omitempty"`
	// DuplicateOf is the case the report was closed as a duplicate of
	// (RC with the case as its result), on the receiver's node and the
	// reporter's.
	DuplicateOf string `json:"duplicateOf,omitempty"`
	// Content is the report's text, shown by GET /api/reports/{id} only.
	Content string `json:"content,omitempty"`
}

// ReportPage is GET /api/reports?actor=NAME&limit=N&after=CURSOR: a page of
// reports in id order, without their text, and, when more follow, the
// after of the next page.
type ReportPage struct {
	Reports []Report `json:"reports"`
	Next    string   `json:"next,omitempty"`
}
