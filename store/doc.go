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
// process. PostgreSQL (engine_pg.go, through pgx) keeps the same buckets in
// two tables, so that several node processes can share one database and
// act as one node; OpenURL picks the engine from the store URL ("bolt:PATH"
// or "postgres://..."), and Copy moves a store from one to the other.
//
// # Several processes on one PostgreSQL database
//
// What holds for one process holds for all of them together:
//
//   - Writes are serialized across processes by one advisory lock that
//     every read-write transaction takes first (engine_pg.go), as bbolt
//     serializes them in one file: the audit log is one hash chain and the
//     delivery counts single records, so a per-case lock would not let two
//     writes run at once anyway. The group committer stays per process.
//     Inbound de-duplication is the activities bucket's unique key under
//     that order: the same activity accepted through two processes at once
//     is stored once, and the second answer is a duplicate.
//   - A delivery handed out by DueDeliveries is leased in the database,
//     claimed with FOR UPDATE SKIP LOCKED, so no two processes send it at
//     once; the lease ends with the delivery's outcome, after
//     Options.LeaseTTL, or as soon as its process is gone: each lease
//     names its process, which holds a session advisory lock while it
//     lives and makes its claims on that session (a claim that succeeds
//     was made while the lock was held; a session the server ended is
//     replaced), and a claim frees the leases whose process's lock is free
//     (a restarted process frees its predecessor's at once). A killed
//     process's deliveries, and the lanes behind them, are sent again
//     within seconds, not after the lease. A lease whose delivery's
//     outcome could not be written ends sooner, as on bbolt
//     (DB.shortenLease): the process writes its end with its next claim.
//     (On bbolt leases are in memory and end with the process.)
//   - The advisory locks and the NOTIFY channel are the schema's: a node
//     whose tables are in a schema other than public (search_path) derives
//     their keys from the schema's name, so that two nodes in two schemas
//     of one database neither serialize each other's writes nor elect one
//     leader between them; public keeps the fixed keys of every release.
//   - Lead elects the one process that runs timers and sweeps: the holder
//     of a session advisory lock, which a dead process's session releases.
//     No session waits inside the server: a process that waits for a
//     session lock (to lead, or to start) asks for it every half second,
//     because a statement that waits keeps its snapshot, and a snapshot
//     kept for as long as another process leads would keep every dead row
//     version of the database from being pruned.
//   - What a write transaction reads ahead to save round trips in the
//     writer lock (the keys, sequences and last keys that recent writes
//     read, sent with the lock; the reads and seeks a batch's requests
//     named, sent once for the batch) is read after the lock is held, so
//     it is what every process committed; the transaction's own writes
//     then keep it right (a value, a seek's answer) or make it be asked
//     again (a bucket's last key, a seek whose answer it deleted).
//   - Every commit is announced on a LISTEN/NOTIFY channel, so Changed fires
//     in every process.
//   - The secrets every process must hold the same (actor keys, tokens)
//     are kept sealed in the files bucket (files.go), and the users, their
//     tokens and dashboard sessions in the accounts bucket (accounts.go).
//     The data key is never stored: each process is given it.
//   - The data key is rotated with every process stopped (RotateDataKey):
//     each process holds a shared session advisory lock while it has the
//     database open, on its lease holder session, and the rotation holds it
//     alone (Options.Exclusive). Each write transaction also reads, with
//     the writer lock, the id of the key the database is sealed with and
//     compares it with its process's: a process that the rotation could
//     not see (it had lost that session) commits nothing after it, is
//     fenced for good (ErrDataKeyRotated, DB.Fenced), and the node stops.
//     It looks at the id too when it hears the rotation's notification,
//     when it gets its listening session back, and at its first read of a
//     value sealed with a key it does not have, and is fenced the same
//     way, so that it stops without waiting for a write.
//
// # What it stores
//
// The database holds these top-level buckets, all created by Open:
//
//	meta          schema version ("schema_version" → 8-byte big-endian uint64);
//	              the counts of pending deliveries and dead letters
//	              ("pending_deliveries", "dead_letters", same encoding), kept
//	              by every write that changes those buckets (deliveryindex.go);
//	              the id of the data key ("data_key_id") and of the keys a
//	              rotation retired ("retired_data_key_ids", 8 bytes each),
//	              so that a process given a retired key is told so, and,
//	              while a rotation is re-encrypting, of its new key
//	              ("next_data_key_id"; seal.go, rotate.go)
//	actors        local actor name → LocalActor (public part only; private
//	              keys are kept outside the database)
//	activities    activity id → stored activity (raw body, direction, local
//	              actor(s), sender, signing key, body digest, times, and
//	              the person who had an outbound one sent)
//	inbox         one sub-bucket per local actor: sequence → activity id
//	outbox        one sub-bucket per local actor: sequence → activity id
//	dedup         inbound activity id → body digest and first-seen time;
//	              no longer written (the activity holds both), what older
//	              versions wrote is pruned by age (PruneDedup)
//	dedup_time    first-seen time + activity id → nothing (prune index)
//	deliveries    delivery id (sequence) → pending Delivery
//	deliveries_due  due time + delivery id → nothing: the head of every
//	              delivery lane (see deliveryindex.go)
//	delivery_lanes  lane hash + delivery id → nothing: every pending
//	              delivery that has an ordering key
//	dead_letters  delivery id → Delivery that exhausted its retries
//	deliveries_damaged  delivery id → the bytes of a pending delivery's
//	              record that did not open or decode, as stored, set
//	              aside by DueDeliveries so that the rest of the queue
//	              goes on (damageddelivery.go); counted in meta
//	              ("damaged_deliveries")
//	deliveries_damaged_notes  delivery id → when a damaged delivery was
//	              set aside and why it did not open, listed with its
//	              size (DamagedDeliveries) until an operator discards
//	              it (DiscardDamagedDelivery)
//	remote_keys   key id → RemoteKey (cached public keys of other servers;
//	              a new or changed key is audited in the same transaction)
//	cases         one sub-bucket per case id, owned by the case packages
//	              through Tx.Case and ReadTx.Case
//	files         path in the data directory → content: the secrets the
//	              processes of a node on a shared store hold alike (files.go)
//	sessions      no longer written (dashboard sessions before accounts)
//	accounts      one sub-bucket per kind of record of package accounts
//	              (users, tokens, sessions and their indexes), sealed like
//	              a case's buckets (accounts.go)
//	follows       the local actors' followers and followings, pending,
//	              accepted, (a following whose Follow was dead-lettered)
//	              failed or (a follower whose actor answered 410) gone,
//	              with its reason, with kept counts (follows.go); the
//	              cursors of the fan-outs of outbound activities to the
//	              followers in progress (fanout.go)
//
// Sequence keys are 8-byte big-endian numbers from the bucket's sequence, so index and queue inserts append in order. Records are encoded in
// a compact binary form rather than JSON (raw bodies are not re-encoded on the
// hot path): a one-byte record tag, then length-prefixed fields in a fixed
// order; see encoding.go.
//
// The schema version of this layout is SchemaVersion. Open writes it into a new
// store, migrates a store of an older version it knows (1: without the
// delivery index, which it builds from the queue; see migrate.go) and refuses
// any other version. On PostgreSQL the tables under the buckets have versions
// of their own (pgMigrations), applied at Open or by MigratePostgres. On
// PostgreSQL, Open holds the migration lock from before the process has
// the database open until its records are at SchemaVersion, and refuses
// (ErrLocked) to migrate records while another process has the database
// open: that process reads and writes the old layout (engine_pg.go
// lockRecords). Activity
// and key ids longer than MaxIDSize are refused on both engines alike.
// A bbolt file that Open creates and cannot make a store of (bbolt's first
// pages or the first commit fail: a full disk) is removed, under its lock,
// so that the next Open creates it anew rather than refusing it; a file
// that was there before is never removed, and an open that waited for the
// lock of a file removed meanwhile opens the path again.
// A bbolt file shorter than the pages its meta page counts (cut short by a
// copy or a full disk) is refused with ErrDamaged before bbolt maps it, by
// Open, MigrateBolt, Copy and RotateDataKey alike, and so is a file with a
// flipped byte in what every open reads: a meta page that fails its
// checksum, a freelist or root page of the wrong type, an element or page
// id outside its page or the file (checkBoltOpenFile, whose cost does not grow
// with the store). A damaged page that only a later read meets makes
// bbolt panic; the engine turns that panic into ErrDamaged for the read.
// A record that does not decode, and a sealed value that does not open
// with the key that sealed it, are ErrDamaged too; DB.Check opens every
// sealed value. DB.Check and CheckBackup first walk every page of a bbolt
// file from the file itself (walkBoltPages: each page read once, its id
// and overflow checked against the file before it is read), so that a
// page reached twice (a cycle, two parents), a free page in use or an
// overflow past the end of the file is ErrDamaged, not a check that loops
// or runs out of memory in bbolt. DamagedError names what is damaged.
//
// DB.Backup writes a consistent copy of a running bbolt store, the file as
// one read transaction sees it, to a writer its caller gives (a local
// file: the transaction lasts as long as the copy), and stops when its
// context ends; CheckBackup checks such a copy, reading it only. A
// PostgreSQL store is backed up with PostgreSQL's tools (ErrNoFileBackup).
// On PostgreSQL a read whose first round trip finds its pooled
// connection's session ended (a restart, a failover) is begun again on
// another connection; one whose connection is lost later reads nothing
// more and fails with the engine's error, and a read whose function
// panics gives its connection back before the panic goes on.
//
// # Writes
//
// All writes go through a group committer: concurrent write requests are
// merged into one read-write transaction and one commit (bbolt: one fsync;
// PostgreSQL: one WAL flush), with no timer, so
// a lone writer commits at once and writers that arrive during a commit form
// the next batch. A write returns only after its transaction is durable on
// disk (unless Options.NoSync is set, which is for tests). On PostgreSQL the
// engine also reruns a whole batch that the server aborted for a
// serialization failure or a deadlock. If one request in a
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
// AcceptInbound stores an inbound activity and its inbox entry in one
// transaction, together with any writes of the caller. The same
// id with the same body digest is a no-op; the same id with another digest is
// ErrConflict. EnqueueOutbound stores an outbound activity and queues one
// delivery per recipient in one transaction (a transactional outbox);
// QueueDeliveries queues more of a stored one, a batch of a fan-out to
// followers whose FanoutCursor moves in the same transaction (fanout.go).
// DueDeliveries hands out deliveries in lanes (recipient + ordering key)
// so that deliveries to one recipient for one case are sent in order; on
// bbolt leases on handed-out deliveries live in memory only, so after a
// restart every pending delivery is due again; on PostgreSQL they are in the
// database (see above). It reads an index of lane heads by due time that
// every write of the queue maintains in its own transaction, so a poll costs
// what it hands out and the leases it skips, not the size of the queue; the
// counts of pending deliveries and dead letters are kept the same way, and
// the queue and the dead letters are listed in pages. DeadLetter and
// RequeueDeadLetter run the function OnDeadLetter set (the node's: a
// following whose Follow is dead-lettered fails, and is pending again when
// the dead letter is retried; a follower whose delivery DeadLetterGone
// gave up because its actor is gone is removed) in the transaction that moves the delivery,
// so the two commit together. A write that queues
// or removes many deliveries (an event to every participant of a case, the
// completions that meet in one commit) reads their lanes and index keys at
// once rather than one after another (deliveryindex.go addMany and
// removeMany), which on PostgreSQL is a round trip per kind of key, not
// per delivery; CompleteDeliveryDeferred gathers the completions that
// arrive before the committer takes them into one such write. The queue and its index
// are written here rather than taken from a queue library because they must
// commit in the same transaction as the activity they send and the case write
// that caused it, which no queue library over bbolt offers; on PostgreSQL a
// queue such as River would commit with it, but would be a second queue with
// other ordering rules than the lanes, so the one queue is kept on both.
package store
