// Package deadline owns a node's deadlines: how long each kind of clock
// the case model runs may take (Config: hours, days or business days, or
// off), the business-day calendar (weekend days, holidays, time zone), the
// listing of what is due next and what is overdue, the bounded summary the
// metrics report, and the Watcher that announces, once each, the deadlines
// that come near and those that pass, as events of the node's change feed
// (which its webhooks deliver).
//
// The clocks themselves are not kept here: package cases derives them from
// the case and report records and indexes them by kind and start time in
// the transactions that write those records, so they never drift from the
// ledger. Because a kind's due time grows with its start under any
// configuration, the index is also in due order, and every listing reads
// only the clocks it returns (plus one per kind); changing the
// configuration changes due times without touching the index.
//
// Business days are computed by hand (Calendar.AddBusinessDays): the
// calendar is a weekend and a list of dates, which no library of the
// module's would make simpler.
package deadline
