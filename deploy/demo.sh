#!/usr/bin/env bash
# The fv story on three local nodes (finder, vendor, coordinator), driven only
# through the vultron command line, printing each step and the case after it.
#
#   deploy/demo.sh [path/to/vultron]      (make demo builds it and runs this)
#
# It starts the nodes and runs deploy/story.sh against them: the same story
# the compose deployment's story service runs against its containers. The
# nodes listen on 127.0.0.1 on free ports, keep their data in a temporary
# directory and are stopped when the script ends, whatever happens. It needs
# bash, curl, jq and python3 (for free ports).
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

step() { printf '\n== %s\n' "$*"; }

step "start three nodes: finder (Person), vendor (Organization), coordinator (Service)"
start finder Person
start vendor Organization
start coordinator Service
echo "finder $FINDER_URL  vendor $VENDOR_URL  coordinator $COORDINATOR_URL"

VULTRON=$VULTRON FINDER_URL=$FINDER_URL VENDOR_URL=$VENDOR_URL COORDINATOR_URL=$COORDINATOR_URL \
	FINDER_TOKEN_FILE=$WORK/finder/api-token VENDOR_TOKEN_FILE=$WORK/vendor/api-token \
	COORDINATOR_TOKEN_FILE=$WORK/coordinator/api-token STORY_TIMEOUT=${STORY_TIMEOUT:-30} \
	sh "$(dirname "$0")/story.sh"
