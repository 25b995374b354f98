// Package outbox is the node's send pipeline: it validates an activity a
// local actor sends, stores it together with one queued delivery per
// recipient in a single transaction, and delivers each with a signed POST,
// retrying with capped exponential backoff until the peer accepts it or the
// retry horizon (seven days by default) has passed, when the delivery moves
// to the dead letters for an operator to see and retry.
//
// Deliveries to one recipient for one case are sent in order: the store
// hands out only the oldest pending delivery of each lane.
package outbox
