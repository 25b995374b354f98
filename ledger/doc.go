// Package ledger owns a vulnerability case's hash-chained ledger: the
// CaseLedgerEntry record, its canonical JSON form and hash, the rules a
// chain of entries must satisfy, and the receive-side state machine of a
// participant's replica.
//
// Every case has a single writer, its Case Actor, which appends each
// accepted case-scoped activity as an Entry (NewEntry) and announces it to
// every participant with Announce(CaseLedgerEntry). A participant node keeps
// a Replica of the ledger: Replica.Offer verifies each entry, applies the
// next one, reports one that arrives ahead of a gap (the node then fetches
// the entries it lacks from the Case Actor, in order) and refuses one that
// does not chain. Verify checks a whole stored ledger at once.
//
// # Hashing
//
// Entries chain by hash: entry 0's prevLogHash is the case's genesis hash,
// and every later entry's prevLogHash is the entryHash of the entry before
// it. Hashes are lowercase hexadecimal SHA-256 digests (64 characters).
//
//   - The genesis hash is SHA-256 over the UTF-8 bytes of
//     caseId + "|" + published + "|" + caseActorId, where published is the
//     case's publication time written in the package's time format (below).
//   - The entry hash is SHA-256 over the RFC 8785 JSON Canonicalization
//     Scheme (JCS) serialization of the entry's wire object without its
//     entryHash member. The wire object is the one Marshal writes: the
//     camelCase members caseId, disposition, eventType, logIndex,
//     logObjectId, payloadSnapshot, prevLogHash, receivedAt and
//     "type":"CaseLedgerEntry", plus term, reasonCode and reasonDetail when
//     they are set. An absent optional member and one that is null or empty
//     hash the same: both are left out. "@context" is never part of the
//     hashed object, so the choice of context URI does not change hashes.
//     The payloadSnapshot (the full JSON object of the recorded activity) is
//     hashed in its canonical form, so its whitespace, member order and
//     number spelling on the wire do not matter.
//
// This deliberately differs from the reference implementation, which hashes
// a snake_case Python json.dumps rendering: JCS is specified independently
// of any language's JSON library, and every node can reproduce it exactly.
//
// # Time format
//
// Times (receivedAt, and the published time in the genesis hash) are
// written in UTC with time.RFC3339Nano, which drops trailing zeros of the
// fraction: "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.25Z". FormatTime
// writes it; an entry whose receivedAt is spelled any other way is invalid.
//
// # Wire form
//
// Marshal writes the wire object in its canonical form, entryHash
// included. Unmarshal accepts exactly the members above, plus "@context"
// (ignored), refuses duplicate member names and anything else, and
// validates every field. PayloadSnapshot is kept as raw JSON.
//
// The package is pure: it does no I/O, imports nothing else from this
// module and keeps no mutable package state. A Replica is a plain value
// the caller persists.
package ledger
