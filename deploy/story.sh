#!/bin/sh
# The fv story between three nodes (a finder, a vendor and a coordinator),
# driven with the vultron command line only: each step is printed with the
# case after it, and at the end the script checks that the three nodes hold
# the same ledger of the case (length and tail hash) and the final state
# (published, embargo exited, closed).
#
# The same script runs against local processes (deploy/demo.sh, behind
# `make demo`) and against the containers of deploy/compose.yaml (its story
# service). Where the nodes are comes from the environment:
#
#   FINDER_URL, VENDOR_URL, COORDINATOR_URL      each node's base URL
#   FINDER_TOKEN_FILE, VENDOR_TOKEN_FILE,
#   COORDINATOR_TOKEN_FILE                       each node's API token file
#   VULTRON        the vultron binary (default: vultron on PATH)
#   STORY_TIMEOUT  seconds any one wait may take (default 60)
#
# Every wait is bounded by STORY_TIMEOUT: when one runs out, the script says
# what it waited for and exits 1. The story opens a case of its own, found by
# its report, so a run on nodes that already hold cases (kept volumes, a
# second run) follows the case it opened. It needs a POSIX shell, curl and
# jq.
set -eu

fail() {
	echo "story: $*" >&2
	exit 1
}

VULTRON=${VULTRON:-vultron}
T=${STORY_TIMEOUT:-60}
case $T in
'' | *[!0-9]*) fail "STORY_TIMEOUT must be a whole number of seconds, not \"$T\"" ;;
esac
[ "$T" -gt 0 ] || fail "STORY_TIMEOUT must be at least 1 second"
for tool in curl jq; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed and not on PATH"
done
command -v "$VULTRON" >/dev/null 2>&1 || fail "the vultron binary \"$VULTRON\" is not there: set VULTRON"
# need NAME VALUE HINT: refuse to start when the variable NAME is empty.
need() { [ -n "$2" ] || fail "$1 is not set: $3"; }
urls="give each node's base URL in FINDER_URL, VENDOR_URL and COORDINATOR_URL"
tokens="give each node's API token file in FINDER_TOKEN_FILE, VENDOR_TOKEN_FILE and COORDINATOR_TOKEN_FILE"
need FINDER_URL "${FINDER_URL:-}" "$urls"
need VENDOR_URL "${VENDOR_URL:-}" "$urls"
need COORDINATOR_URL "${COORDINATOR_URL:-}" "$urls"
need FINDER_TOKEN_FILE "${FINDER_TOKEN_FILE:-}" "$tokens"
need VENDOR_TOKEN_FILE "${VENDOR_TOKEN_FILE:-}" "$tokens"
need COORDINATOR_TOKEN_FILE "${COORDINATOR_TOKEN_FILE:-}" "$tokens"
for f in "FINDER_TOKEN_FILE=$FINDER_TOKEN_FILE" "VENDOR_TOKEN_FILE=$VENDOR_TOKEN_FILE" "COORDINATOR_TOKEN_FILE=$COORDINATOR_TOKEN_FILE"; do
	[ -r "${f#*=}" ] || fail "${f%%=*} names ${f#*=}, which cannot be read"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vultron-story.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# url NODE, token NODE: where a node is and its API token file.
url() {
	case $1 in
	finder) printf '%s' "$FINDER_URL" ;;
	vendor) printf '%s' "$VENDOR_URL" ;;
	coordinator) printf '%s' "$COORDINATOR_URL" ;;
	*) fail "no node named $1" ;;
	esac
}
token() {
	case $1 in
	finder) printf '%s' "$FINDER_TOKEN_FILE" ;;
	vendor) printf '%s' "$VENDOR_TOKEN_FILE" ;;
	coordinator) printf '%s' "$COORDINATOR_TOKEN_FILE" ;;
	*) fail "no node named $1" ;;
	esac
}

# on NODE ARGS...: run vultron against NODE's node; as NODE ARGS...: acting
# as NODE's actor. Read-only commands take no --as.
on() {
	_node=$1
	shift
	"$VULTRON" "$@" --node "$(url "$_node")" --token-file "$(token "$_node")"
}
as() {
	_node=$1
	shift
	on "$_node" "$@" --as "$_node"
}

step() { printf '\n== %s\n' "$*"; }

# retry WHAT CMD...: run CMD until it succeeds, for at most T seconds, and
# print its output; when time runs out, say what was waited for and what the
# last attempt answered. It polls: the command line has no way to be told.
retry() {
	_what=$1
	shift
	_deadline=$(($(date +%s) + T))
	while ! "$@" >"$WORK/retry.out" 2>&1; do
		# -gt: date +%s counts whole seconds, so a wait lasts at least T.
		if [ "$(date +%s)" -gt "$_deadline" ]; then
			fail "gave up after ${T}s waiting for $_what; the last attempt said: $(tail -n 3 "$WORK/retry.out")"
		fi
		sleep 0.2
	done
	cat "$WORK/retry.out"
}

# Every node answers /readyz (its store answers) before anything is sent.
for n in finder vendor coordinator; do
	retry "the $n node at $(url "$n")/readyz to answer 200" curl -fsS --max-time 5 "$(url "$n")/readyz" >/dev/null
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)-$$
TITLE="Heap overflow in the image parser ($STAMP)"

step "RS: the finder reports a vulnerability to the vendor"
as finder report submit --to "$(url vendor)/actors/vendor" --name "$TITLE" \
	--content "A crafted PNG overflows a heap buffer in decode_chunk()." --json >"$WORK/offer.json"
OFFER=$(jq -r '.activity.id' "$WORK/offer.json")
REPORT=$(jq -r '.activity.object.id' "$WORK/offer.json")
# delivered, or pending / retrying while the vendor's node is still
# starting: the node retries, and the next step waits for the report.
echo "RS $(jq -r '.delivery.state // "queued"' "$WORK/offer.json"): $OFFER (report $REPORT)"

step "RV: the vendor validates the report, which opens a case hosted by the vendor's node"
retry "the report $REPORT to reach the vendor and be validated" as vendor report validate "$OFFER"

# the_case: the case the vendor opened for this run's report. Its title is
# unique to the run; the case's reports confirm it is this report's.
the_case() {
	on vendor case list --json >"$WORK/cases.json"
	_id=$(jq -r --arg t "$TITLE" '[.[] | select(.name == $t)] | if length == 1 then .[0].id else empty end' "$WORK/cases.json")
	[ -n "$_id" ] || return 1
	on vendor case show "$_id" --json | jq -e --arg r "$REPORT" '.reports | index($r) != null' >/dev/null || return 1
	printf '%s\n' "$_id"
}
CASE=$(retry "the vendor's node to list the case of report $REPORT" the_case)
echo "story case: $CASE"
on finder case wait "$CASE" --until 'entries>=2' --timeout "${T}s"
on vendor case show "$CASE"

step "RA: the vendor engages the case"
as vendor case engage "$CASE" --wait rm=ACCEPTED --timeout "${T}s"

step "EP: the vendor proposes a 45-day embargo; EA: the finder, then the owner accept it"
as vendor embargo propose "$CASE" --days 45 --wait em=PROPOSED --timeout "${T}s"
on finder case wait "$CASE" --until em=PROPOSED --timeout "${T}s"
as finder embargo accept "$CASE"
on vendor case wait "$CASE" --until 'entries>=5' --timeout "${T}s"
as vendor embargo accept "$CASE" --wait em=ACTIVE --timeout "${T}s"

step "the vendor's embargo calendar (iCalendar feed, read with the feed token): one CONFIRMED event at the end"
CAL=$(on vendor calendar --json | jq -r '.calendar')
FEED=$(on vendor calendar --json | jq -r '.caseTemplate')
FEED=$(printf '%s' "$FEED" | sed "s|{id}|$(jq -rn --arg c "$CASE" '$c | @uri')|")
calendar_event() { curl -fsS --max-time 10 "$FEED" | tr -d '\r' | grep -E '^(UID|DTSTART|SEQUENCE|STATUS|SUMMARY):'; }
curl -fsS --max-time 10 "$CAL" >/dev/null || fail "the vendor's calendar feed $(url vendor)/calendar.ics did not answer"
calendar_event

step "RS to a new participant: the vendor invites the coordinator, which accepts"
as vendor participant invite "$CASE" --actor "$(url coordinator)/actors/coordinator" --role coordinator
retry "the coordinator's invitation to case $CASE to reach it" as coordinator participant accept-invite --case "$CASE"
on coordinator case wait "$CASE" --as coordinator --until rm=RECEIVED,pec=SIGNATORY --timeout "${T}s"

step "GI: notes from the finder and the vendor"
as finder case note "$CASE" --content "Reproduced on 2.4.1 and 2.5.0."
as vendor case note "$CASE" --content "Fix in review; release planned before the embargo ends."

step "CF: the vendor's fix is ready"
as vendor status fix-ready "$CASE" --wait vfd=VFd --timeout "${T}s"

step "CP: the vendor publishes; the embargo ends"
as vendor status public "$CASE" --wait pxa=Pxa,em=EXITED --timeout "${T}s"
on finder case wait "$CASE" --until pxa=Pxa,em=EXITED --timeout "${T}s"
echo "-- the calendar event is cancelled: the embargo ended before its date"
calendar_event | tee "$WORK/calendar.txt"
grep -qx 'STATUS:CANCELLED' "$WORK/calendar.txt" || fail "the calendar event of case $CASE is not CANCELLED after publication"

step "RC: every participant closes the case"
as coordinator case engage "$CASE" --wait rm=ACCEPTED --timeout "${T}s"
as coordinator case close "$CASE"
as finder case close "$CASE"
as vendor case close "$CASE" --wait closed --timeout "${T}s"
on finder case wait "$CASE" --until closed --timeout "${T}s"
on coordinator case wait "$CASE" --until closed --timeout "${T}s"

step "the case on every node: the same ledger, the same final state"
for n in finder vendor coordinator; do
	echo "-- $n"
	on "$n" case show "$CASE"
	on "$n" case show "$CASE" --json >"$WORK/$n.json"
done
jq -rs '
	(map([.ledgerLength, .tailHash]) | unique | length == 1) as $same
	| (all(.pxaState == "Pxa" and .emState == "EXITED" and .closed)) as $final
	| if $same and $final then
		"\nledger length \(.[0].ledgerLength), tail \(.[0].tailHash[0:16]) on all three nodes; fv story complete"
	else
		"\nMISMATCH: " + (map("\(.ledgerLength) entries, tail \(.tailHash[0:16]), \(.pxaState), EM \(.emState), closed \(.closed)") | join("; "))
	end' "$WORK/finder.json" "$WORK/vendor.json" "$WORK/coordinator.json" | tee "$WORK/verdict.txt"
grep -q 'fv story complete' "$WORK/verdict.txt" || fail "the three nodes do not agree on case $CASE (finder; vendor; coordinator above)"
