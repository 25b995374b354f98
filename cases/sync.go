package cases

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// A replica repairs itself by pulling: when it learns that the Case
// Actor's ledger is longer than its own (an announced entry arrived past
// the next one, or a check of the Case Actor's tail said so), it fetches
// the entries it lacks with a signed GET of the case's ledger, in pages,
// starting after the last entry it holds and naming that entry's hash.
// The Case Actor answers from its ledger and stores nothing, so how often
// a replica asks costs the host no storage, and a replica asks once per
// gap, not once per entry that arrived early: a case's sync state holds
// one scheduled check, which every sign of a gap moves to now.
//
// The state lives in the case's bucket under "sync" (SyncState). The
// checks are scheduled in the case-bucket index named replicaChecks, keyed
// by time and case id, so finding the due ones reads only those. Replicas
// that are in sync are checked at growing intervals (IdleMin doubling to
// IdleMax, with jitter), to find a gap at the tail that no later
// announcement would reveal; a failed check is retried at growing
// intervals too. A replica whose ledger differs from the Case Actor's (a
// fork) stops applying the case and is never checked again on its own:
// that needs an operator (Resync). A replica whose Case Actor refuses its
// actor the ledger EndAfter times in a row is ended (SyncState.Ended):
// its actor was removed and the announcement of that was lost, so it is
// checked no more until a resync, an announcement or a new joining.

// Names of case buckets that are no case: like objectIndex, no URL.
const (
	// replicaChecks maps the time of a replica's next check (8 bytes,
	// big-endian Unix nanoseconds) followed by its case id to nothing.
	replicaChecks = "replica checks by time"
	// replicaCounts holds the number of replicas behind and forked.
	replicaCounts = "replica sync counts"
)

var keySync = []byte("sync")

// SyncState is what a node knows about how its replica of a case compares
// with the Case Actor's ledger, and when it looks next.
type SyncState struct {
	// Local is the local actor that takes part in the case: the fetches
	// of the ledger are signed with its key.
	Local string `json:"local"`
	// CaseActor is the id of the case's Case Actor; empty for a case
	// looked for from its report's validation until the first entry
	// fetched or announced names it (expectCase).
	CaseActor string `json:"caseActor"`
	// Known is the length of the Case Actor's ledger as far as this node
	// knows: from the entries announced to it and the Case Actor's answers.
	Known int64 `json:"known"`
	// BehindSince is when the replica first lacked an entry the Case Actor
	// had recorded; zero while it is in sync.
	BehindSince time.Time `json:"behindSince,omitzero"`
	// Fork, when set, says where this replica's ledger differs from the
	// Case Actor's; the node applies nothing more to the case.
	Fork *Fork `json:"fork,omitempty"`
	// Rebuild is set when an operator asked to replace this copy with the
	// Case Actor's ledger: the next check fetches it from its start, and
	// the copy is replaced in the transaction that applies the first page,
	// so the case never disappears meanwhile. Until then nothing is applied.
	Rebuild bool `json:"rebuild,omitempty"`
	// Emitted is set once a rebuild has replaced a copy: the case's
	// emitted index (bucketEmitted) then holds the entries earlier copies
	// held, whose events the change feed carries already, so that an
	// entry the Case Actor's ledger brings back unchanged is not
	// announced to the webhooks a second time.
	Emitted bool `json:"emitted,omitempty"`
	// ClocksHeld is set from a rebuild's drop of the copy until the
	// rebuilt copy reaches the Case Actor's tail: the case's deadline
	// clocks stay as the dropped copy left them, with the record of what
	// the node announced of them, rather than follow the copy applied so
	// far, which lacks the clocks later entries start (a clock stopped and
	// started again is announced again).
	ClocksHeld bool `json:"clocksHeld,omitempty"`
	// LastCheck is when the node last asked the Case Actor, LastError what
	// went wrong then ("" when it answered) and Failures how many checks in
	// a row failed.
	LastCheck time.Time `json:"lastCheck,omitzero"`
	LastError string    `json:"lastError,omitempty"`
	Failures  int       `json:"failures,omitempty"`
	// Refusals counts the checks in a row that the Case Actor answered by
	// refusing this node's actor its ledger (ErrLedgerRefused). After
	// SyncTiming.EndAfter of them the replica is Ended: its actor is most
	// likely no participant any more, removed by an entry whose
	// announcement never arrived, and asking again every RetryMax would go
	// on for ever. An ended replica is checked no more until an operator
	// resyncs it, its actor joins the case again, or an announcement of
	// the case arrives.
	Refusals int       `json:"refusals,omitempty"`
	Ended    time.Time `json:"ended,omitzero"`
	// Idle is the interval between checks while the replica is in sync; it
	// doubles after each check that found nothing new.
	Idle time.Duration `json:"idle,omitempty"`
	// NextCheck is when the node asks the Case Actor next; zero when no
	// check is scheduled (a fork).
	NextCheck time.Time `json:"nextCheck,omitzero"`
}

// Fork describes where a replica's ledger and the Case Actor's differ.
type Fork struct {
	// Index is the first log index at which they differ, as far as known.
	Index  int64     `json:"index"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// behind reports whether the replica of length held lacks entries.
func (s *SyncState) behind(held int64) bool { return s.Fork == nil && s.Known > held }

// JoinHorizon is how long a node looks for a case one of its actors
// accepted an invitation to while the Case Actor refuses it the ledger,
// before it gives up: the Case Actor did not record the joining.
const JoinHorizon = 7 * 24 * time.Hour

// Sync timing defaults; see SyncerConfig.
const (
	DefaultIdleMin  = time.Minute
	DefaultIdleMax  = 6 * time.Hour
	DefaultRetryMin = 15 * time.Second
	DefaultRetryMax = 30 * time.Minute
	// DefaultEndAfter refusals end a replica: with the default retry
	// intervals, about half an hour after the first, long enough that a
	// Case Actor's node briefly misconfigured does not end its replicas.
	DefaultEndAfter = 8
)

// SyncTiming is how a node schedules the checks of its replicas.
type SyncTiming struct {
	// IdleMin is the first interval between checks of a replica in sync
	// (after an entry arrived); it doubles after every check that finds
	// nothing new, up to IdleMax.
	IdleMin, IdleMax time.Duration
	// RetryMin is the wait after a failed check; it doubles after every
	// further failure, up to RetryMax.
	RetryMin, RetryMax time.Duration
	// EndAfter is how many checks in a row the Case Actor may refuse this
	// node's actor its ledger before the replica is ended
	// (SyncState.Refusals); default DefaultEndAfter.
	EndAfter int
}

func (t SyncTiming) withDefaults() SyncTiming {
	if t.IdleMin <= 0 {
		t.IdleMin = DefaultIdleMin
	}
	if t.IdleMax < t.IdleMin {
		t.IdleMax = max(DefaultIdleMax, t.IdleMin)
	}
	if t.RetryMin <= 0 {
		t.RetryMin = DefaultRetryMin
	}
	if t.RetryMax < t.RetryMin {
		t.RetryMax = max(DefaultRetryMax, t.RetryMin)
	}
	if t.EndAfter <= 0 {
		t.EndAfter = DefaultEndAfter
	}
	return t
}

// jitter spreads d by up to ±20%, derived from the case and the time so
// that a write function run again computes the same value.
func jitter(d time.Duration, caseID string, now time.Time) time.Duration {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(now.UnixNano()))
	sum := sha256.Sum256(append([]byte(caseID), b[:]...))
	frac := float64(binary.BigEndian.Uint16(sum[:2]))/65535*0.4 - 0.2
	return d + time.Duration(float64(d)*frac)
}

func loadSync(tx *store.ReadTx, caseID string) (*SyncState, error) {
	b, err := tx.Case(caseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := b.Get(keySync)
	if v == nil {
		return nil, nil
	}
	var s SyncState
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("case %s: decode sync state: %w", caseID, err)
	}
	return &s, nil
}

// syncClass is what replicaCounts counts a state as.
func syncClass(s *SyncState, held int64) string {
	switch {
	case s == nil:
		return ""
	case !s.Ended.IsZero() && s.Fork == nil:
		// Checked no more: waiting would not bring the entries. A
		// rebuild the Case Actor refused ends so too.
		return ""
	case s.Fork != nil || s.Rebuild:
		return "forked"
	case s.behind(held):
		return "behind"
	}
	return ""
}

// saveSync stores s for a replica holding held entries, moves its
// scheduled check from old's time to s.NextCheck, and keeps the counts of
// replicas behind and forked; old is the state as loaded in this
// transaction (nil for a new one) and oldHeld what the replica held then.
func saveSync(tx *store.Tx, caseID string, old *SyncState, oldHeld int64, s *SyncState, held int64) error {
	b, err := tx.Case(caseID)
	if err != nil {
		return err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("case %s: encode sync state: %w", caseID, err)
	}
	if err := b.Put(keySync, v); err != nil {
		return err
	}
	var oldNext time.Time
	if old != nil {
		oldNext = old.NextCheck
	}
	if !oldNext.Equal(s.NextCheck) {
		checks, err := tx.Case(replicaChecks)
		if err != nil {
			return err
		}
		if !oldNext.IsZero() {
			if err := checks.Delete(checkKey(oldNext, caseID)); err != nil {
				return err
			}
		}
		if !s.NextCheck.IsZero() {
			if err := checks.Put(checkKey(s.NextCheck, caseID), nil); err != nil {
				return err
			}
		}
	}
	if before, after := syncClass(old, oldHeld), syncClass(s, held); before != after {
		counts, err := tx.Case(replicaCounts)
		if err != nil {
			return err
		}
		for name, d := range map[string]int64{before: -1, after: +1} {
			if name == "" {
				continue
			}
			n := int64(0)
			if v := counts.Get([]byte(name)); len(v) == 8 {
				n = int64(binary.BigEndian.Uint64(v))
			}
			if err := counts.Put([]byte(name), binary.BigEndian.AppendUint64(nil, uint64(max(n+d, 0)))); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkKey(t time.Time, caseID string) []byte {
	k := make([]byte, 8, 8+len(caseID))
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	return append(k, caseID...)
}

// ReplicaCounts returns how many of this node's replicas are behind their
// Case Actor's ledger and how many are forked from it. The counts are kept
// as the states change, so reading them costs the same for any number of
// cases.
func ReplicaCounts(tx *store.ReadTx) (behind, forked int64, err error) {
	counts, err := tx.Case(replicaCounts)
	if errors.Is(err, store.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	read := func(name string) int64 {
		if v := counts.Get([]byte(name)); len(v) == 8 {
			return int64(binary.BigEndian.Uint64(v))
		}
		return 0
	}
	return read("behind"), read("forked"), nil
}

// replicaView is a replica's sync state loaded in a write transaction,
// with what it was when loaded, so that saving it keeps the schedule and
// the counts right.
type replicaView struct {
	caseID  string
	old     *SyncState
	oldHeld int64
	s       *SyncState
}

// loadReplicaView loads a replica of caseID (nil if the node holds none),
// how many entries it holds, and its sync state.
func loadReplicaView(tx *store.ReadTx, caseID string) (r *ledger.Replica, held int64, v *replicaView, err error) {
	r, err = loadReplica(tx, caseID)
	if err != nil {
		return nil, 0, nil, err
	}
	if r != nil {
		held = r.Next
	}
	v, err = loadView(tx, caseID, held)
	if err != nil {
		return nil, 0, nil, err
	}
	return r, held, v, nil
}

func loadView(tx *store.ReadTx, caseID string, held int64) (*replicaView, error) {
	s, err := loadSync(tx, caseID)
	if err != nil {
		return nil, err
	}
	v := &replicaView{caseID: caseID, old: s, oldHeld: held}
	if s != nil {
		c := *s
		v.s = &c
	}
	return v, nil
}

func (v *replicaView) save(tx *store.Tx, held int64) error {
	if v.s == nil {
		return nil
	}
	return saveSync(tx, v.caseID, v.old, v.oldHeld, v.s, held)
}

// learn records that the Case Actor's ledger has at least length entries,
// for a replica holding held: a replica that lacks some is behind from now
// and checked at once.
func (e *Engine) learn(v *replicaView, length, held int64, now time.Time) {
	s := v.s
	resume(s)
	s.Known = max(s.Known, length)
	if s.behind(held) {
		if s.BehindSince.IsZero() {
			s.BehindSince = now
		}
		if s.Failures == 0 && (s.NextCheck.IsZero() || s.NextCheck.After(now)) {
			s.NextCheck = now
		}
	}
}

// settled records that the replica holding held, whose case is now c,
// took an entry in order: when it lacks nothing, it is in sync, and its
// next check is soon, to find a tail entry that was recorded but never
// arrived (unless the case takes no more entries for it, see idleChecks).
func (e *Engine) settled(v *replicaView, c *Case, held int64, now time.Time) {
	s := v.s
	resume(s)
	s.Known = max(s.Known, held)
	if s.behind(held) || s.Fork != nil {
		return
	}
	s.BehindSince = time.Time{}
	if !e.idleChecks(c, s.Local) {
		s.NextCheck = time.Time{}
		return
	}
	if s.Failures == 0 {
		s.Idle = e.cfg.Sync.IdleMin
		s.NextCheck = now.Add(jitter(s.Idle, v.caseID, now))
	}
}

// resume takes an ended replica's state s back to checking: the Case
// Actor announced an entry of the case to this node, so it serves this
// node's actor again.
func resume(s *SyncState) {
	if s.Ended.IsZero() {
		return
	}
	s.Ended, s.Refusals, s.Failures = time.Time{}, 0, 0
}

// suspect records that an announced entry did not fit the replica (a
// fork, or a corrupt announcement): the replica is checked at once, and
// the Case Actor's answer decides which.
func (e *Engine) suspect(v *replicaView, reason string, now time.Time) {
	s := v.s
	s.LastError = reason
	if s.Fork == nil && (s.NextCheck.IsZero() || s.NextCheck.After(now)) {
		s.NextCheck = now
	}
}

// ReplicaState names how a node's copy of a case compares with its Case
// Actor's ledger.
type ReplicaState string

// The replica states.
const (
	// ReplicaHosted: this node hosts the case; its ledger is the case's.
	ReplicaHosted ReplicaState = "hosted"
	// ReplicaInSync: the replica holds every entry the node knows of.
	ReplicaInSync ReplicaState = "in-sync"
	// ReplicaBehind: the Case Actor recorded entries the replica lacks.
	ReplicaBehind ReplicaState = "behind"
	// ReplicaForked: the replica's ledger differs from the Case Actor's;
	// the node applies nothing more to the case until an operator acts.
	ReplicaForked ReplicaState = "forked"
	// ReplicaEnded: the Case Actor refused this node's actor its ledger
	// SyncTiming.EndAfter times in a row, so the node stopped checking it
	// (SyncState.Ended); the copy stops where it was.
	ReplicaEnded ReplicaState = "ended"
	// ReplicaRebuilding: at an operator's request the node is replacing
	// its copy with the Case Actor's ledger, fetched from its first entry.
	// Until that is done the replica counts as forked in the node's
	// metrics: it is not known to agree with the Case Actor.
	ReplicaRebuilding ReplicaState = "rebuilding"
)

// ReplicaStatus is what an operator sees of a replica: its state, how far
// behind it is and since when, and what the node is doing about it.
type ReplicaStatus struct {
	State ReplicaState `json:"state"`
	// Length is how many entries this node holds, Known how many the Case
	// Actor is known to have, Behind the difference.
	Length int64 `json:"length"`
	Known  int64 `json:"known"`
	Behind int64 `json:"behind,omitempty"`
	// Since is when the replica fell behind or forked.
	Since     time.Time `json:"since,omitzero"`
	LastCheck time.Time `json:"lastCheck,omitzero"`
	NextCheck time.Time `json:"nextCheck,omitzero"`
	LastError string    `json:"lastError,omitempty"`
	Fork      *Fork     `json:"fork,omitempty"`
	// Doing says in one sentence what the node is doing about it.
	Doing string `json:"doing"`
}

// Status returns how this node's copy of case c compares with the Case
// Actor's ledger; isLocal says whether an actor id is one of this node's.
func Status(tx *store.ReadTx, c *Case, now time.Time, isLocal func(id string) bool) (ReplicaStatus, error) {
	if hostedBy(tx, c.ID) != "" {
		return ReplicaStatus{State: ReplicaHosted, Length: c.LedgerLen, Known: c.LedgerLen,
			Doing: "this node hosts the case: its ledger is the one replicas follow"}, nil
	}
	s, err := loadSync(tx, c.ID)
	if err != nil {
		return ReplicaStatus{}, err
	}
	st := ReplicaStatus{State: ReplicaInSync, Length: c.LedgerLen, Known: c.LedgerLen}
	if s == nil {
		st.Doing = "following the Case Actor's announcements"
		return st, nil
	}
	st.Known = max(s.Known, c.LedgerLen)
	st.LastCheck, st.NextCheck, st.LastError = s.LastCheck, s.NextCheck, s.LastError
	at := func(t time.Time) string {
		if !t.After(now) {
			return "now"
		}
		return "at " + t.UTC().Format(time.RFC3339)
	}
	switch {
	case !s.Ended.IsZero() && s.Fork == nil:
		// Before a rebuild: one the Case Actor refused ended so, and
		// fetches nothing more.
		st.State, st.Since = ReplicaEnded, s.Ended
		st.Doing = fmt.Sprintf("stopped: the Case Actor refused this node's actor its ledger %d times in a row, so the actor is most likely no longer a participant (the announcement of its removal never arrived here); this copy stops where it was and the case's ledger is no longer checked; run `vultron case resync CASE` to check again", s.Refusals)
	case s.Rebuild:
		st.State, st.Since = ReplicaRebuilding, s.BehindSince
		st.Doing = "replacing this node's copy with the Case Actor's ledger: fetching it from its first entry " + at(s.NextCheck)
	case s.Fork != nil:
		st.State, st.Fork, st.Since = ReplicaForked, s.Fork, s.Fork.Since
		st.Doing = fmt.Sprintf("stopped: this node's ledger differs from the Case Actor's at entry %d, so the node applies nothing more to the case; check both, then run `vultron case resync CASE --rebuild` to replace this copy with the Case Actor's", s.Fork.Index)
	case s.behind(c.LedgerLen):
		st.State, st.Since, st.Behind = ReplicaBehind, s.BehindSince, st.Known-c.LedgerLen
		if s.Failures > 0 {
			st.Doing = fmt.Sprintf("fetching entries %d to %d from the Case Actor failed %d times (%s); trying again %s", c.LedgerLen, st.Known-1, s.Failures, s.LastError, at(s.NextCheck))
		} else {
			st.Doing = fmt.Sprintf("fetching entries %d to %d from the Case Actor %s", c.LedgerLen, st.Known-1, at(s.NextCheck))
		}
	case s.Failures > 0:
		st.Doing = fmt.Sprintf("checking the Case Actor's ledger failed %d times (%s); trying again %s", s.Failures, s.LastError, at(s.NextCheck))
	case s.NextCheck.IsZero() && !c.EveryoneLeft():
		// No check is scheduled for a case that goes on only when this
		// node's actor was removed from it (idleChecks).
		st.Doing = "this node's actor was removed from the case, so the Case Actor sends it nothing more: this copy stops at the removal, and the case's ledger is no longer checked"
	case s.NextCheck.IsZero():
		st.Doing = "in step with the Case Actor; the case takes no more entries for this node, so its ledger is no longer checked"
	case !localEngagement(c, isLocal):
		// The Case Actor announces to a participant without case
		// engagement only the entries it still needs (Case.AnnounceTo):
		// this copy may lack the others until the next check.
		st.Doing = "this node's participant closed its part of the case or left active work on it, so the Case Actor announces it only the embargo's and the world's changes and the entries about it; the case's other entries arrive at the next check of its ledger, " + at(s.NextCheck)
	default:
		st.Doing = "in step with the Case Actor; next check of its ledger " + at(s.NextCheck)
	}
	return st, nil
}

// localEngagement reports whether a participant of this node (isLocal)
// still works on case c (Participant.CaseEngagement), so that the Case
// Actor announces every entry to it.
func localEngagement(c *Case, isLocal func(id string) bool) bool {
	for _, p := range c.Participants {
		if isLocal(p.Actor) && p.CaseEngagement() {
			return true
		}
	}
	return false
}

// Resync asks for a check of the replica of caseID now. With rebuild the
// check fetches the Case Actor's ledger from its first entry and replaces
// everything the replica holds of the case with it, keeping only who takes
// part and which Case Actor it trusts: the way out of a fork, once an
// operator has looked at both sides. It returns a
// *problem.Error when the node hosts the case or has no replica of it.
func (e *Engine) Resync(tx *store.Tx, caseID string, rebuild bool) error {
	if hostedBy(&tx.ReadTx, caseID) != "" {
		return problem.Conflict("this node hosts case %s: its ledger is the one replicas follow, there is nothing to resync", caseID)
	}
	_, held, v, err := loadReplicaView(&tx.ReadTx, caseID)
	if err != nil {
		return err
	}
	if v.s == nil {
		c, err := loadCase(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		if c == nil {
			return problem.NotFound("no case %s on this node", caseID)
		}
		local, err := e.localParticipant(&tx.ReadTx, c)
		if err != nil {
			return err
		}
		v.s = &SyncState{Local: local, CaseActor: c.CaseActor, Known: c.LedgerLen}
	}
	now := e.now().UTC()
	if rebuild {
		since := now
		if v.s.Fork != nil {
			since = v.s.Fork.Since
		}
		v.s.Fork, v.s.Rebuild, v.s.BehindSince = nil, true, since
	} else if v.s.Fork != nil {
		// Checked again: if the Case Actor now agrees with this copy
		// (its host was restored, say), the fork is lifted.
		v.s.Fork = nil
		v.s.LastError = "a resync asked whether the fork is still there"
	}
	v.s.Failures, v.s.NextCheck = 0, now
	v.s.Ended, v.s.Refusals = time.Time{}, 0
	return v.save(tx, held)
}

// localParticipant returns the name of a local actor that takes part in c.
func (e *Engine) localParticipant(tx *store.ReadTx, c *Case) (string, error) {
	for _, p := range c.Participants {
		if p.Removed || !e.cfg.IsLocal(p.Actor) {
			continue
		}
		return p.Actor[len(e.cfg.PublicURL+"/actors/"):], nil
	}
	return "", problem.Conflict("no actor of this node takes part in case %s any more", c.ID)
}

// bucketEmitted is the sub-bucket of a rebuilt replica's case bucket that
// lists the entries whose change-feed events the node emitted before the
// rebuild: entry hash → log index, like the "hashes" index it is copied
// from. An entry hash names the entry and every entry before it, so an
// entry listed there is the same entry, after the same history, as one
// already announced.
const bucketEmitted = "emitted"

// dropReplica removes what a replica holds of a case: its ledger, the
// case state folded from it and its notes. The sync state and the
// invitations stay, and so does the record of which entries the change
// feed announced (bucketEmitted), to which it adds the entries it drops.
// The copy goes through the dropped copy's hash index once, as the drop
// itself goes through its ledger.
func dropReplica(tx *store.Tx, caseID string) error {
	b, err := tx.Case(caseID)
	if err != nil {
		return err
	}
	hashes, err := b.Bucket("hashes")
	if err != nil {
		return err
	}
	emitted, err := b.Bucket(bucketEmitted)
	if err != nil {
		return err
	}
	if err := hashes.ForEach(func(k, v []byte) error { return emitted.Put(k, v) }); err != nil {
		return fmt.Errorf("keep the entries the change feed announced of case %s: %w", caseID, err)
	}
	for _, k := range [][]byte{keyCase, keyReplica} {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	// The index of participants is derived from the record: it goes with
	// it, and the rebuilt record writes it anew (participants.go).
	if err := dropParticipantsIndex(b); err != nil {
		return err
	}
	for _, sub := range []string{"ledger", "hashes", bucketNotes, bucketNoteIDs} {
		if err := b.DeleteBucket(sub); err != nil {
			return err
		}
	}
	return nil
}

// LedgerPage is a page of a Case Actor's ledger: the entries from a log
// index on, and the ledger's length and tail hash when it was read.
type LedgerPage struct {
	Entries []ledger.Entry
	Length  int64
	Tail    string
}

// ErrLedgerDiffers is what a LedgerFetcher returns (wrapped) when the Case
// Actor says the entry before the requested ones is not the one named: the
// two ledgers differ.
var ErrLedgerDiffers = errors.New("the Case Actor's ledger differs from this replica")

// ErrLedgerRefused is what a LedgerFetcher returns (wrapped) when the Case
// Actor's node refuses the signer the ledger (403, or the 404 it answers
// alike for a case it does not host and for a signer that may not read
// it): the signer is no participant of the case, or no longer one.
var ErrLedgerRefused = errors.New("the Case Actor's node refuses this node's actor the case's ledger")

// LedgerFetcher fetches a page of a case's ledger from its Case Actor, as
// local actor signer: the entries from log index from on, at most limit,
// after the entry whose hash is prev (the genesis hash when from is 0, or
// "" when the replica does not know it yet).
type LedgerFetcher interface {
	FetchLedger(ctx context.Context, signer, caseID string, from int64, prev string, limit int) (LedgerPage, error)
}

// MaxLedgerPage bounds the entries of one page of a ledger.
const MaxLedgerPage = 500

// ReadLedgerPage returns the page of the ledger of case caseID, hosted by
// this node, that a replica asks for: at most limit entries (at most
// MaxLedgerPage) and about maxBytes of them (at least one) from log index
// from on. prev must be the hash of entry from-1 (the genesis hash for
// from 0; "" skips the check): when it is not, the replica's ledger
// differs from this one, and the answer is a 409 *problem.Error that says
// where.
func ReadLedgerPage(tx *store.ReadTx, c *Case, from int64, prev string, limit, maxBytes int) (LedgerPage, error) {
	page := LedgerPage{Length: c.LedgerLen, Tail: c.TailHash}
	if from < 0 {
		return page, problem.BadRequest("from must be a log index (0 or more), not %d", from)
	}
	if from > c.LedgerLen {
		return page, problem.Conflict("case %s has %d ledger entries, and the replica says it holds %d: the ledgers differ", c.ID, c.LedgerLen, from)
	}
	if prev != "" {
		// Entry 0 chains to the genesis hash, every later one to the entry
		// before it.
		want := ""
		near, err := Entries(tx, c.ID, max(from-1, 0), 1)
		if err != nil {
			return page, err
		}
		if len(near) == 1 {
			want = near[0].EntryHash
			if from == 0 {
				want = near[0].PrevLogHash
			}
		}
		if want != "" && want != prev {
			return page, problem.Conflict("entry %d of case %s has hash %s in the Case Actor's ledger, not %s: the ledgers differ from there", from-1, c.ID, want, prev)
		}
	}
	limit = min(max(limit, 1), MaxLedgerPage)
	b, err := tx.Case(c.ID)
	if err != nil {
		return page, err
	}
	entries, err := b.Bucket("ledger")
	if err != nil {
		return page, err
	}
	size := 0
	errEnough := errors.New("enough")
	err = entries.Range(store.SeqKey(uint64(from)), func(_, v []byte) error {
		if len(page.Entries) >= limit || (len(page.Entries) > 0 && size+len(v) > maxBytes) {
			return errEnough
		}
		e, err := ledger.Unmarshal(v)
		if err != nil {
			return err
		}
		size += len(v)
		page.Entries = append(page.Entries, e)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return page, fmt.Errorf("case %s: ledger: %w", c.ID, err)
	}
	return page, nil
}

// ledgerPageDoc is a page of a ledger on the wire: an ActivityStreams
// OrderedCollectionPage of the entries in their canonical form, with the
// ledger's length and the hash of its last entry.
type ledgerPageDoc struct {
	Context      string            `json:"@context"`
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	PartOf       string            `json:"partOf"`
	StartIndex   int64             `json:"startIndex"`
	TotalItems   int64             `json:"totalItems"`
	TailHash     string            `json:"tailHash"`
	OrderedItems []json.RawMessage `json:"orderedItems"`
	Next         string            `json:"next,omitempty"`
}

// EncodeLedgerPage writes page, read from index from of the ledger of case
// caseID, as the document a replica receives; id is its URL and next that
// of the page after it ("" when it reaches the tail).
func EncodeLedgerPage(caseID, id, next string, from int64, page LedgerPage) ([]byte, error) {
	doc := ledgerPageDoc{Context: "https://www.w3.org/ns/activitystreams", ID: id, Type: "OrderedCollectionPage",
		PartOf: caseID + "/ledger", StartIndex: from, TotalItems: page.Length, TailHash: page.Tail,
		OrderedItems: make([]json.RawMessage, 0, len(page.Entries)), Next: next}
	for _, e := range page.Entries {
		raw, err := ledger.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("ledger page of %s: %w", caseID, err)
		}
		doc.OrderedItems = append(doc.OrderedItems, raw)
	}
	return json.Marshal(doc)
}

// DecodeLedgerPage reads a page of the ledger of case caseID that starts at
// log index from: every entry must be a valid entry of that case, the
// entries consecutive from there, and the stated length at least as long.
func DecodeLedgerPage(body []byte, caseID string, from int64) (LedgerPage, error) {
	var doc ledgerPageDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return LedgerPage{}, fmt.Errorf("the ledger page of %s is not JSON: %w", caseID, err)
	}
	if doc.Type != "OrderedCollectionPage" || doc.StartIndex != from {
		return LedgerPage{}, fmt.Errorf("the ledger page of %s is a %q starting at %d, not an OrderedCollectionPage starting at %d", caseID, doc.Type, doc.StartIndex, from)
	}
	page := LedgerPage{Length: doc.TotalItems, Tail: doc.TailHash, Entries: make([]ledger.Entry, 0, len(doc.OrderedItems))}
	for i, raw := range doc.OrderedItems {
		e, err := ledger.Unmarshal(raw)
		if err != nil {
			return LedgerPage{}, fmt.Errorf("the ledger page of %s: item %d: %w", caseID, i, err)
		}
		if e.CaseID != caseID || e.LogIndex != from+int64(i) {
			return LedgerPage{}, fmt.Errorf("the ledger page of %s: item %d is entry %d of case %s, not entry %d", caseID, i, e.LogIndex, e.CaseID, from+int64(i))
		}
		page.Entries = append(page.Entries, e)
	}
	if page.Length < from+int64(len(page.Entries)) {
		return LedgerPage{}, fmt.Errorf("the ledger page of %s says the ledger has %d entries but holds entries up to %d", caseID, page.Length, from+int64(len(page.Entries))-1)
	}
	return page, nil
}

// syncMigrated is the case-bucket name whose presence says that every
// replica has a sync state (MigrateSync ran); like objectIndex, no URL.
const syncMigrated = "replicas given sync states"

// migrateSyncPage bounds the cases MigrateSync looks at per transaction.
const migrateSyncPage = 500

// MigrateSync gives every replica written before sync states existed one,
// with a check scheduled soon, so that a tail it lacks is found like any
// other's. It walks the cases in pages of migrateSyncPage, one transaction
// each, and then marks the store so that later starts return at once. It
// returns how many replicas it gave a state.
func (e *Engine) MigrateSync(ctx context.Context, db *store.DB) (int, error) {
	done := false
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		_, err := tx.Case(syncMigrated)
		done = err == nil
		return nil
	}); err != nil || done {
		return 0, err
	}
	now := e.now().UTC()
	total, after := 0, ""
	for {
		var ids []string
		more := false
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			ids, more = ids[:0], false
			return tx.CasesAfter(after, func(id string) (bool, error) {
				if len(ids) == migrateSyncPage {
					more = true
					return false, nil
				}
				ids = append(ids, id)
				return true, nil
			})
		}); err != nil {
			return total, fmt.Errorf("give replicas sync states: %w", err)
		}
		n := 0
		err := db.Update(ctx, func(tx *store.Tx) error {
			n = 0
			for _, id := range ids {
				if hostedBy(&tx.ReadTx, id) != "" {
					continue
				}
				r, err := loadReplica(&tx.ReadTx, id)
				if err != nil {
					return err
				}
				if r == nil {
					continue // no replica: a report, an index
				}
				if s, err := loadSync(&tx.ReadTx, id); err != nil {
					return err
				} else if s != nil {
					continue
				}
				c, err := loadCase(&tx.ReadTx, id)
				if err != nil {
					return err
				}
				if c == nil {
					continue
				}
				local, err := e.localParticipant(&tx.ReadTx, c)
				if err != nil {
					continue // no actor of this node takes part any more
				}
				s := &SyncState{Local: local, CaseActor: c.CaseActor, Known: r.Next, Idle: e.cfg.Sync.IdleMin,
					NextCheck: now.Add(jitter(e.cfg.Sync.IdleMin, id, now))}
				if err := saveSync(tx, id, nil, r.Next, s, r.Next); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("give replicas sync states: %w", err)
		}
		total += n
		if !more || len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
	}
	err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Case(syncMigrated)
		return err
	})
	return total, err
}

// idleChecks reports whether a replica in sync of case c, followed by
// local actor local, is still checked at idle intervals: not once every
// participant closed the case (it records nothing more) nor once the
// local actor was removed (the Case Actor answers it no more). A case
// closed because its owner left is still checked until every participant
// left it: it records their Leave.
func (e *Engine) idleChecks(c *Case, local string) bool {
	if c == nil {
		return true
	}
	if c.EveryoneLeft() {
		return false
	}
	p := c.Participant(e.cfg.PublicURL + "/actors/" + local)
	return p == nil || !p.Removed
}

// expectCase schedules a check of the ledger of a case that local actor
// local expects to follow: one it has just accepted an invitation to, from
// its Case Actor caseActor, or the case its report opened, named by the
// validation (caseActor is then "": the case's first entry names it,
// applyCheck). The Case Actor announces the entry that records the joining
// (or the case's creation), and the replica fetches the entries before
// it; but that announcement alone tells this node the case exists, so
// when it is lost (a 413, a dead letter) the replica would never start.
// The check falls due after IdleMin; the announcement normally arrives
// first and moves it to now. Until the Case Actor has recorded the joining
// it refuses the fetch, and the check is retried like any failed one. The
// replica counts as behind meanwhile: the case has at least its first
// entry, which it lacks. Nothing is scheduled for a case this node hosts,
// nor for one it follows whose check is scheduled already; one it follows
// whose checks stopped (its participant was removed and joins again) is
// checked again after IdleMin. A replica that has not started JoinHorizon
// after the acceptance is given up (applyCheck): the Case Actor never
// recorded the joining.
func (e *Engine) expectCase(tx *store.Tx, caseID, local, caseActor string, now time.Time) error {
	if hostedBy(&tx.ReadTx, caseID) != "" {
		return nil
	}
	r, err := loadReplica(&tx.ReadTx, caseID)
	if err != nil {
		return err
	}
	if r != nil {
		// A replica whose checks stopped looks again, like a new one:
		// the announcement of the joining may be lost too.
		v, err := loadView(&tx.ReadTx, caseID, r.Next)
		if err != nil || v.s == nil || v.s.Fork != nil || !v.s.NextCheck.IsZero() {
			return err
		}
		v.s.Local, v.s.Idle = local, e.cfg.Sync.IdleMin
		v.s.Ended, v.s.Refusals, v.s.Failures = time.Time{}, 0, 0
		v.s.NextCheck = now.Add(jitter(e.cfg.Sync.IdleMin, caseID, now))
		return v.save(tx, r.Next)
	}
	old, err := loadSync(&tx.ReadTx, caseID)
	if err != nil || (old != nil && !old.NextCheck.IsZero()) {
		return err
	}
	s := &SyncState{Local: local, CaseActor: caseActor, Known: 1, BehindSince: now,
		NextCheck: now.Add(jitter(e.cfg.Sync.IdleMin, caseID, now))}
	return saveSync(tx, caseID, old, 0, s, 0)
}

// dropSync forgets the sync state s of a case this node has no replica of,
// with its scheduled check and its place in the counts.
func dropSync(tx *store.Tx, caseID string, s *SyncState) error {
	// Saving an empty state unschedules the check and uncounts the replica.
	if err := saveSync(tx, caseID, s, 0, &SyncState{}, 0); err != nil {
		return err
	}
	b, err := tx.Case(caseID)
	if err != nil {
		return err
	}
	return b.Delete(keySync)
}
