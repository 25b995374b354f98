// Package store owns the node's database. It is the only package that
// imports a database driver (bbolt, pgx): every persistent read and write of
// the node goes through its API, so the layout, its invariants and its
// durability rules live in one place.
//
// # Engines
//
// The store's records, indexes, queue, audit chain, case buckets and sealing
// are written once, over a small internal model of a storage engine (see
// engine.go): nested buckets of bytewise-ordered key/value pairs with
// cursors and a sequence per bucket, read in read-only transactions and
// written in read-write ones. bbolt is that model (engine_bolt.go wraps it
// without changing the file layout), and it is the default: one file, one
// process.
//
// # What it stores
//
// The database holds these top-level buckets, all created by Open:
//
//	meta          schema version ("schema_version" → 8-byte big-endian uint64);
//	              the counts of pending deliveries and dead letters
//	              ("pending_deliveries", "dead_letters", same encoding), kept
//	              by every write that changes those buckets (deliveryindex.go)
//	actors        local actor name → LocalActor (public part only; private
//	              keys are kept outside the database)
//	activities    activity id → stored activity (raw body, direction, local
//	              actor(s), sender, signing key, body digest, times)
//	inbox         one sub-bucket per local actor: sequence → activity id
//	outbox        one sub-bucket per local actor: sequence → activity id
//	dedup         inbound activity id → body digest and first-seen time
//	dedup_time    first-seen time + activity id → nothing (prune index)
//	deliveries    delivery id (sequence) → pending Delivery
//	deliveries_due  due time + delivery id → nothing: the head of every
//	              delivery lane (see deliveryindex.go)
//	delivery_lanes  lane hash + delivery id → nothing: every pending
//	              delivery that has an ordering key
//	dead_letters  delivery id → Delivery that exhausted its retries
//	remote_keys   key id → RemoteKey (cached public keys of other servers;
//	              a new or changed key is audited in the same transaction)
//	cases         one sub-bucket per case id, owned by the case packages
//	              through Tx.Case and ReadTx.Case
//
// Sequence keys are 8-byte big-endian numbers from bbolt's per-bucket
// sequence, so index and queue inserts append in order. Records are encoded in
// a compact binary form rather than JSON (raw bodies are not re-encoded on the
// hot path): a one-byte record tag, then length-prefixed fields in a fixed
// order; see encoding.go.
//
// The schema version of this layout is SchemaVersion. Open writes it into a new
// file, migrates a file of an older version it knows (1: without the delivery
// index, which it builds from the queue; see migrate.go) and refuses any other
// version.
//
// # Writes
//
// All writes go through a group committer: concurrent write requests are
// merged into one bbolt read-write transaction and one fsync, with no timer, so
// a lone writer commits at once and writers that arrive during a commit form
// the next batch. A write returns only after its transaction is durable on
// disk (unless Options.NoSync is set, which is for tests). If one request in a
// batch fails, the batch is rolled back and rerun without it, so functions
// passed to Update, AcceptInbound and EnqueueOutbound may run more than once
// and must be idempotent: they must derive everything they write from the
// transaction and their inputs, and must not have side effects outside it.
//
// # Reads
//
// Reads use short read-only transactions and copy every value out before the
// transaction ends; no read transaction is held across I/O or returned to the
// caller.
//
// # Inbound and outbound activities
//
// AcceptInbound stores an inbound activity, its inbox entry and its dedup
// record in one transaction, together with any writes of the caller. The same
// id with the same body digest is a no-op; the same id with another digest is
// ErrConflict. EnqueueOutbound stores an outbound activity and queues one
// delivery per recipient in one transaction (a transactional outbox).
// DueDeliveries hands out deliveries in lanes (recipient + ordering key)
// so that deliveries to one recipient for one case are sent in order; leases on
// handed-out deliveries live in memory only, so after a restart every pending
// delivery is due again. It reads an index of lane heads by due time that
// every write of the queue maintains in its own transaction, so a poll costs
// what it hands out and the leases it skips, not the size of the queue; the
// counts of pending deliveries and dead letters are kept the same way, and
// the queue and the dead letters are listed in pages. The queue and its index
// are written here rather than taken from a queue library because they must
// commit in the same bbolt transaction as the activity they send and the
// case write that caused it, which no queue library over bbolt offers.
package store
