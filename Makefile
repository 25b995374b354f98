# Build, test and run the Vultron node. Every target installs what it needs:
# a fresh machine with Go needs nothing else.

GO      ?= go
BIN     := bin/vultron
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Short fuzzing run per target in `make test` (seeded from ../shared/corpus).
FUZZTIME ?= 10s

.PHONY: all build test vet unit peer-deps browser-deps fuzz bench soak run demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vultron

vet:
	$(GO) vet ./...

unit: peer-deps browser-deps
	$(GO) test -count=1 -timeout 15m ./...

# The dashboard's browser test drives Debian's Chromium; it is installed
# (as root, as on CI) only when missing.
CHROMIUM ?= /usr/bin/chromium

browser-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing chromium for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi

# The foreign peer of the interoperability tests (federation_test) is a
# Node.js script; its packages are pinned in package-lock.json and
# installed again only when the lockfile is newer than the installed tree.
PEER := federation_test/peer

peer-deps: $(PEER)/node_modules/.package-lock.json

$(PEER)/node_modules/.package-lock.json: $(PEER)/package-lock.json $(PEER)/package.json
	cd $(PEER) && npm ci --no-audit --no-fund
	@touch $@

# Each go test -fuzz run takes one target of one package.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./vocab
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./actor
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME) ./ledger

test: vet build unit fuzz

# Benchmarks (not part of test; never fail on a number): every figure of
# BENCHMARKS.md, the median of BENCH_RUNS runs, printed with its command;
# raw results in bench/results/results.json, plotted to bench/results/growth.svg.
BENCH_RUNS ?= 3

bench: peer-deps
	$(GO) run ./bench/run -runs $(BENCH_RUNS) -out bench/results/results.json
	python3 bench/plot.py bench/results/results.json bench/results/growth.svg

# Fault injection (not part of test): SEEDS seeds of TestFaults, five nodes
# behind proxies that drop, delay, duplicate, reorder and refuse requests,
# cut nodes off and kill them, from seed FIRST on (a new start every run
# unless given) with the fault kinds KINDS. Prints one line per seed (with
# the command that replays a failure) and the total time; the full output,
# with each failure's trace, goes to SOAK_LOG. See docs/faults.md.
SEEDS    ?= 20
KINDS    ?= all
SOAK_LOG ?= soak.log
ifndef FIRST
FIRST := $(shell date +%s)
endif

soak: SHELL := /bin/bash
soak: .SHELLFLAGS := -o pipefail -c
soak:
	@echo "soak: $(SEEDS) seeds from $(FIRST), faults $(KINDS); full output in $(SOAK_LOG)"
	@$(GO) test ./federation_test -run '^TestFaults$$' -count=1 -timeout 0 -v \
		-faults.seeds=$(SEEDS) -faults.first=$(FIRST) -faults.kinds=$(KINDS) 2>&1 | tee $(SOAK_LOG) | \
		grep --line-buffered -E 'faults_test.go:[0-9]+: (seed [0-9]+ \(|cluster of|[0-9]+ seeds with)|^(ok|FAIL)'

# A node on 127.0.0.1:7001 with one actor (vendor) and its data in ./data.
run: build
	$(BIN) serve --data ./data --listen 127.0.0.1:7001 --log-format console

# Three nodes (finder, vendor, coordinator) as local processes on 127.0.0.1
# and the fv story between them, through the command line, step by step.
# deploy/compose.yaml runs the same with docker compose.
demo: build
	bash deploy/demo.sh $(BIN)

clean:
	rm -rf bin
