#!/bin/sh
# The fv story against the compose nodes (see compose.yaml), with the vultron
# command line only. Each node's API token is read from its volume.
set -eu
v() { node=$1; shift; vultron "$@" --node "http://$node:7001" --token-file "/nodes/$node/api-token"; }
as() { node=$1; shift; v "$node" "$@" --as "$node"; }

echo "== RS: finder reports to vendor"
as finder report submit --to http://vendor:7001/actors/vendor --name "Heap overflow in the image parser" \
	--content "A crafted PNG overflows a heap buffer." --json > /tmp/offer.json
OFFER=$(sed -n 's/.*"id": *"\(http[^"]*activities[^"]*\)".*/\1/p' /tmp/offer.json | head -n 1)
echo "== RV: vendor validates $OFFER"
until as vendor report validate "$OFFER"; do sleep 1; done
CASE=$(v vendor case list --json | sed -n 's/.*"id": *"\(http[^"]*\/cases\/[^"]*\)".*/\1/p' | head -n 1)
v finder case wait "$CASE" --until 'entries>=2'
echo "== RA, EP, EA"
as vendor case engage "$CASE" --wait rm=ACCEPTED
as vendor embargo propose "$CASE" --days 45 --wait em=PROPOSED
v finder case wait "$CASE" --until em=PROPOSED
as finder embargo accept "$CASE"
v vendor case wait "$CASE" --until 'entries>=5'
as vendor embargo accept "$CASE" --wait em=ACTIVE
echo "== invite the coordinator"
as vendor participant invite "$CASE" --actor http://coordinator:7001/actors/coordinator --role coordinator
until as coordinator participant accept-invite; do sleep 1; done
echo "== CF, CP, RC"
as vendor status fix-ready "$CASE" --wait vfd=VFd
as vendor status public "$CASE" --wait pxa=Pxa,em=EXITED
as coordinator case engage "$CASE" --wait rm=ACCEPTED
as coordinator case close "$CASE"
as finder case close "$CASE"
as vendor case close "$CASE" --wait closed
for n in finder vendor coordinator; do echo "-- $n"; v "$n" case show "$CASE"; done
