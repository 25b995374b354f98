// Package vocab is the Vultron Protocol's wire vocabulary: it parses
// ActivityStreams 2.0 documents strictly, carries the Vultron object types
// as typed Go values, serialises them in a stable form, and tells what an
// activity means in the protocol (its semantic, such as SUBMIT_REPORT, and
// the formal message types it can carry, such as RS).
//
// # Representation
//
// The ActivityStreams core types are recognised with go-fed's stock
// generated vocabulary, github.com/go-fed/activity/streams, at v1.0.0: its
// resolver decides which type names are ActivityStreams types and whether
// each is an activity, an actor or another object. Their standard
// properties are read and checked by this package, because go-fed's
// deserialisers keep a value of the wrong kind as an "unknown" value
// instead of refusing it. The Vultron
// object types (VulnerabilityReport, VulnerabilityCase, CaseParticipant,
// ParticipantStatus, CaseStatus, EmbargoEvent, CaseProposal,
// CaseParticipantRole, CaseLedgerEntry and the rest) are this package's own
// structs, with JSON Schemas beside them in schemas/ (see Schemas).
//
// The alternative, adding the Vultron types to go-fed's generated
// vocabulary, was rejected: go-fed's pub package is bound to the interfaces
// generated into github.com/go-fed/activity/streams/vocab, so typed Vultron
// objects inside pub would mean regenerating streams inside go-fed's own
// module path and committing that copy (about 20 MB of generated code) with
// a replace directive. Stock streams already keeps Vultron objects as
// unknown values and re-serialises them unchanged, so pub can carry them;
// typed structs with JSON Schemas are simpler to validate, to version and
// to read than generated code.
//
// # Parsing
//
// Parse accepts strict JSON only: bounded size and nesting (Limits), no
// duplicate member names at any depth, nothing after the document. The
// top-level "@context" must be the ActivityStreams context, the Vultron
// context, or an array holding one of them; nested objects may carry their
// own. A local context object, at any depth, may add terms but not
// redefine or alias a term this package reads, and no member is named by
// a JSON-LD keyword or by another name of such a term, "as:actor" for one
// (context.go). Types must be ActivityStreams or Vultron types; enumeration values
// must be spellings the protocol defines (enums.go lists them, including
// the aliases still accepted). Documents in the 2023 example shapes
// ("asType", custom activity types such as RmCloseReport, renamed
// properties) are refused with a *ParseError that says what to write
// instead. Properties this package does not model are kept, so a parsed
// document serialises without loss.
//
// # Serialising
//
// Marshal writes AS2 camelCase names with no null members, "@context" set
// to the Vultron context URI as a single string (the reference's parser
// refuses an array), and members in a fixed order, so equal values give
// equal bytes.
//
// # Classification
//
// Classify matches an activity against the protocol's patterns
// (Offer(VulnerabilityReport) is SUBMIT_REPORT, Accept(Invite(EmbargoEvent))
// is ACCEPT_INVITE_TO_EMBARGO_ON_CASE, ...). Unlike the reference, it never
// guesses the type of an object given as a bare IRI from rule order: if
// the node's Resolver does not hold it, the result is
// UNKNOWN_UNRESOLVABLE_OBJECT with Unresolved set. It accepts the
// equivalent forms the reference itself sends: Read(VulnerabilityReport) as
// well as Read(Offer(VulnerabilityReport)), Undo(Ignore(VulnerabilityCase))
// as re-engagement, and Remove(CaseParticipant) with the case in origin or
// target.
//
// The protocol's acknowledgements and errors (RK, EK, CK, GK; RE, EE, CE,
// GE), for which the reference defines no wire form but RK's, are a Read
// and an Ignore of the message they answer (replies.go, which says why);
// Classify tells which K or E one is from the model of that message. A
// report offered with an embargo proposal (RS|EP) is an Offer whose
// instrument is the EmbargoEvent.
//
// # Following and articles
//
// The plain ActivityStreams activities actors exchange beside the
// protocol (Follow; Accept, Reject and Undo of a Follow; Announce; Create
// and Update of an Article) are built and read with go-fed's stock
// streams types, which model exactly that vocabulary (social.go):
// NewFollow, NewFollowAnswer, NewUndo, NewAnnounce and NewArticle, and
// ReadFollow through streams' JSON resolver. Classify keeps calling them
// no Vultron message, as the reference does; ClassifySocial names them.
// A case's advisory is the exception: Create(Article) and Update(Article)
// in a case's context are this node's PUBLISH_ADVISORY and
// REVISE_ADVISORY, recorded in the case's ledger, and Add(ProductStatus)
// records a vendor's statement about a product (docs/protocol.md).
//
// The package is pure: it does no I/O, imports no other package of this
// project, and has no package-level mutable state. Enumerations stay wire
// strings here; package cvdstate converts them into its types.
package vocab
