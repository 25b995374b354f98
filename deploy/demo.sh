#!/usr/bin/env bash
# The fv story on three local nodes (finder, vendor, coordinator), driven only
# through the vultron command line, printing each step and the case after it.
#
#   deploy/demo.sh [path/to/vultron]      (make demo builds it and runs this)
#
# The nodes listen on 127.0.0.1 on free ports, keep their data in a temporary
# directory and are stopped when the script ends, whatever happens.
set -euo pipefail

VULTRON=${1:-bin/vultron}
[ -x "$VULTRON" ] || { echo "demo: $VULTRON is not an executable; run make build first" >&2; exit 1; }
VULTRON=$(cd "$(dirname "$VULTRON")" && pwd)/$(basename "$VULTRON")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vultron-demo.XXXXXX")
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start NAME TYPE: a node with one actor NAME of ActivityStreams type TYPE.
start() {
	local name=$1 type=$2 port
	port=$(free_port)
	mkdir -p "$WORK/$name"
	"$VULTRON" serve --data "$WORK/$name" --listen "127.0.0.1:$port" --public-url "http://127.0.0.1:$port" \
		--actor "$name:$type" --allow-private-peers --log-format json --log-level warn \
		>"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 200); do
		if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
			eval "${name^^}_URL=http://127.0.0.1:$port"
			return
		fi
		sleep 0.05
	done
	echo "demo: the $name node did not become ready; its log:" >&2
	cat "$WORK/$name.log" >&2
	exit 1
}

# as NAME ARGS...: run vultron against NAME's node, acting as NAME.
as() {
	local name=$1
	shift
	local url_var="${name^^}_URL"
	"$VULTRON" "$@" --node "${!url_var}" --token-file "$WORK/$name/api-token" --as "$name"
}

# read-only commands take no --as.
on() {
	local name=$1
	shift
	local url_var="${name^^}_URL"
	"$VULTRON" "$@" --node "${!url_var}" --token-file "$WORK/$name/api-token"
}

step() { printf '\n== %s\n' "$*"; }

step "start three nodes: finder (Person), vendor (Organization), coordinator (Service)"
start finder Person
start vendor Organization
start coordinator Service
echo "finder $FINDER_URL  vendor $VENDOR_URL  coordinator $COORDINATOR_URL"

step "RS: the finder reports a vulnerability to the vendor"
OFFER=$(as finder report submit --to "$VENDOR_URL/actors/vendor" --name "Heap overflow in the image parser" \
	--content "A crafted PNG overflows a heap buffer in decode_chunk()." --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["activity"]["id"])')
echo "RS sent: $OFFER"

step "RV: the vendor validates the report, which opens a case hosted by the vendor's node"
for _ in $(seq 1 100); do
	if as vendor report validate "$OFFER" 2>/dev/null; then break; fi
	sleep 0.1
done
CASE=$(on vendor case list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
on finder case wait "$CASE" --until entries\>=2 --timeout 30s
on vendor case show "$CASE"

step "RA: the vendor engages the case"
as vendor case engage "$CASE" --wait rm=ACCEPTED --timeout 30s

step "EP: the vendor proposes a 45-day embargo; EA: the finder, then the owner accept it"
as vendor embargo propose "$CASE" --days 45 --wait em=PROPOSED --timeout 30s
on finder case wait "$CASE" --until em=PROPOSED --timeout 30s
as finder embargo accept "$CASE"
on vendor case wait "$CASE" --until entries\>=5 --timeout 30s
as vendor embargo accept "$CASE" --wait em=ACTIVE --timeout 30s

step "the vendor's embargo calendar (iCalendar feed, read with the feed token): one CONFIRMED event at the end"
CAL=$(on vendor calendar --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["calendar"])')
calendar_event() { curl -fsS "$CAL" | tr -d '\r' | grep -E '^(UID|DTSTART|SEQUENCE|STATUS|SUMMARY):'; }
calendar_event

step "RS to a new participant: the vendor invites the coordinator, which accepts"
as vendor participant invite "$CASE" --actor "$COORDINATOR_URL/actors/coordinator" --role coordinator
for _ in $(seq 1 100); do
	if as coordinator participant accept-invite >/dev/null 2>&1; then break; fi
	sleep 0.1
done
on coordinator case wait "$CASE" --as coordinator --until rm=RECEIVED,pec=SIGNATORY --timeout 30s

step "GI: notes from the finder and the vendor"
as finder case note "$CASE" --content "Reproduced on 2.4.1 and 2.5.0."
as vendor case note "$CASE" --content "Fix in review; release planned before the embargo ends."

step "CF: the vendor's fix is ready"
as vendor status fix-ready "$CASE" --wait vfd=VFd --timeout 30s

step "CP: the vendor publishes; the embargo ends"
as vendor status public "$CASE" --wait pxa=Pxa,em=EXITED --timeout 30s
on finder case wait "$CASE" --until pxa=Pxa,em=EXITED --timeout 30s
echo "-- the calendar event is cancelled: the embargo ended before its date"
calendar_event | tee "$WORK/calendar.txt"
grep -qx 'STATUS:CANCELLED' "$WORK/calendar.txt" || { echo "demo: the calendar event is not CANCELLED" >&2; exit 1; }

step "RC: every participant closes the case"
as coordinator case engage "$CASE" --wait rm=ACCEPTED --timeout 30s
as coordinator case close "$CASE"
as finder case close "$CASE"
as vendor case close "$CASE" --wait closed --timeout 30s
on finder case wait "$CASE" --until closed --timeout 30s

step "the case on every node: the same ledger, the same final state"
for n in finder vendor coordinator; do
	echo "-- $n"
	on "$n" case show "$CASE"
done
python3 - "$(on finder case show "$CASE" --json)" "$(on vendor case show "$CASE" --json)" "$(on coordinator case show "$CASE" --json)" <<'PY'
import json, sys
cases = [json.loads(a) for a in sys.argv[1:]]
tails = {(c["ledgerLength"], c["tailHash"]) for c in cases}
ok = len(tails) == 1 and all(c["pxaState"] == "Pxa" and c["emState"] == "EXITED" and c["closed"] for c in cases)
print("\nledger length %d, tail %s on all three nodes; %s" % (cases[0]["ledgerLength"], cases[0]["tailHash"][:16],
      "fv story complete" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
PY
