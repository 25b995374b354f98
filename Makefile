# Build, test and run the Vultron node. Every target installs what it needs:
# a fresh machine with Go needs nothing else, and `make test` reads nothing
# outside the repository. `make conformance` checks the node against
# third-party reference material kept beside it (VULTRON_CONFORMANCE).

GO      ?= go
BIN     := bin/vultron
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Short fuzzing run per target in `make test` (FuzzParse is seeded from
# vocab/testdata/wire): a count of inputs, not a duration. With a duration
# Go's fuzzing coordinator (before Go 1.27, go.dev/issue/75804) can report
# its own deadline as the target's failure, "context deadline exceeded"
# with no failing input, on a busy machine. 100,000 inputs take 5-15 s a
# target on two cores.
FUZZTIME ?= 100000x

.PHONY: all build test vet unit peer-deps browser-deps story-deps bench-deps pg-deps proxy-deps screenshots fuzz conformance conformance-material bench soak run demo image clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vultron

# go vet, and gofmt over the repository's Go files (what git tracks, or
# every .go file outside node_modules when this is no git checkout).
GOFMT := $(shell $(GO) env GOROOT)/bin/gofmt

vet:
	$(GO) vet ./...
	@files=$$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*'); \
	unformatted=$$($(GOFMT) -l $$files); \
	if [ -n "$$unformatted" ]; then echo "not formatted by gofmt (run gofmt -w on them):"; echo "$$unformatted"; exit 1; fi

# The store's tests and the whole-network tests run on PostgreSQL too: each
# test binary that needs it starts a throw-away server on 127.0.0.1 from
# the machine's binaries (internal/pgtest) and stops it at the end; a
# missing server fails them here instead of skipping them.
unit: peer-deps browser-deps story-deps pg-deps proxy-deps
	VULTRON_TEST_POSTGRES_REQUIRED=1 VULTRON_TEST_NGINX_REQUIRED=1 $(GO) test -count=1 -timeout 15m ./...

# The dashboard's browser test drives Debian's Chromium; it is installed
# (as root, as on CI) only when missing.
CHROMIUM ?= /usr/bin/chromium

browser-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing chromium for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi

# The README's screenshots of the dashboard, taken by its browser test.
screenshots: browser-deps
	VULTRON_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestDashboardInBrowser$$' ./node

# deploy/story.sh (make demo, and its tests in federation_test) reads the
# node's JSON answers with jq, installed from Debian when missing.
story-deps:
	@if ! command -v jq >/dev/null 2>&1; then \
		echo "installing jq for deploy/story.sh"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq; \
	fi

# PostgreSQL's server binaries (initdb, postgres) for the tests of the
# PostgreSQL store; Debian's postgresql is installed (as root, as on CI)
# only when they are missing.
pg-deps:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql for the tests of the PostgreSQL store"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; \
	fi

# nginx, to run deploy/nginx.conf (the proxy of deploy/compose-postgres.yaml)
# in front of two node processes in the tests; installed when missing,
# without starting Debian's nginx service (RUNLEVEL=1).
proxy-deps:
	@if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; then \
		echo "installing nginx for the test of deploy/nginx.conf"; \
		apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light; \
	fi

# The foreign peer of the interoperability tests (federation_test) is a
# Node.js script; its packages are pinned in package-lock.json and
# installed again only when the lockfile is newer than the installed tree.
PEER := federation_test/peer

peer-deps: $(PEER)/node_modules/.package-lock.json

$(PEER)/node_modules/.package-lock.json: $(PEER)/package-lock.json $(PEER)/package.json
	cd $(PEER) && npm ci --no-audit --no-fund
	@touch $@

# The plain Fedify inbox the inbox benchmark compares with (bench/run),
# pinned and installed the same way.
FEDIFY_INBOX := bench/fedify-inbox

bench-deps: $(FEDIFY_INBOX)/node_modules/.package-lock.json

$(FEDIFY_INBOX)/node_modules/.package-lock.json: $(FEDIFY_INBOX)/package-lock.json $(FEDIFY_INBOX)/package.json
	cd $(FEDIFY_INBOX) && npm ci --no-audit --no-fund
	@touch $@

# Each go test -fuzz run takes one target of one package.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./vocab
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./actor
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME) ./ledger

test: vet build unit fuzz

# Conformance against third-party material that stays outside the
# repository: the reference implementation's wire corpus in corpus/ and
# its checker tools/corpus-check. The directory is VULTRON_CONFORMANCE,
# relative to the repository root unless absolute. The Go tests that read
# it carry the conformance build tag, so `make test` never builds them.
# Among them, the whole publication network (federation_test) checks the
# CSAF, CVE and OSV documents a node serves against the official schemas
# in $(VULTRON_CONFORMANCE)/schemas; it runs the CSAF validator of the
# peer's packages too, hence peer-deps.
VULTRON_CONFORMANCE ?= ../shared
CONFORMANCE_DIR := $(abspath $(or $(VULTRON_CONFORMANCE),../shared))
CONFORMANCE_PKGS = $(sort $(dir $(shell grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git '^//go:build conformance' .)))

conformance: conformance-material build peer-deps
	VULTRON_CONFORMANCE="$(CONFORMANCE_DIR)" $(GO) test -count=1 -tags conformance -run '^TestConformance' $(or $(CONFORMANCE_PKGS),$(error no package has conformance tests))
	@if [ -x "$(CONFORMANCE_DIR)/tools/corpus-check" ]; then \
		echo "$(CONFORMANCE_DIR)/tools/corpus-check $(BIN)"; \
		"$(CONFORMANCE_DIR)/tools/corpus-check" $(BIN); \
	else \
		echo "make conformance: no $(CONFORMANCE_DIR)/tools/corpus-check, so bin/vultron classify is not compared with it"; \
	fi

# Refuses to start, before building anything, when the material is missing.
conformance-material:
	@if [ ! -d "$(CONFORMANCE_DIR)" ]; then \
		echo "make conformance: $(CONFORMANCE_DIR) does not exist: set VULTRON_CONFORMANCE to the directory of the third-party conformance material (default ../shared)" >&2; \
		exit 1; \
	fi
	@if [ ! -d "$(CONFORMANCE_DIR)/corpus" ]; then \
		echo "make conformance: $(CONFORMANCE_DIR) has no corpus/ directory: set VULTRON_CONFORMANCE to the directory of the third-party conformance material (default ../shared)" >&2; \
		exit 1; \
	fi

# Benchmarks (not part of test; never fail on a number): every figure of
# BENCHMARKS.md, the median of BENCH_RUNS runs, printed with its command;
# raw results in bench/results/results.json, plotted to bench/results/growth.svg.
# One part alone: go run ./bench/run -parts inbox (merged into results.json).
BENCH_RUNS ?= 3

bench: peer-deps bench-deps
	$(GO) run ./bench/run -runs $(BENCH_RUNS) -out bench/results/results.json
	python3 bench/plot.py bench/results/results.json bench/results/growth.svg

# Fault injection (not part of test): SEEDS seeds of TestFaults, five nodes
# behind proxies that drop, delay, duplicate, reorder and refuse requests,
# cut nodes off and kill them, from seed FIRST on (a new start every run
# unless given) with the fault kinds KINDS, on CLUSTERS clusters side by
# side (each its own five nodes; 1 unless given), each node keeping its state in
# STORE: bolt (its file; the default), postgres (its own schema of a throw-away
# PostgreSQL server) or mixed (every other node on PostgreSQL). Prints one line per seed (with
# the command that replays a failure) and the total time; the full output,
# with each failure's trace, goes to SOAK_LOG. See docs/faults.md.
SEEDS    ?= 20
KINDS    ?= all
SOAK_LOG ?= soak.log
CLUSTERS ?= 1
STORE    ?= bolt
ifndef FIRST
FIRST := $(shell date +%s)
endif

soak: SHELL := /bin/bash
soak: .SHELLFLAGS := -o pipefail -c
soak:
	@echo "soak: $(SEEDS) seeds from $(FIRST), faults $(KINDS), $(CLUSTERS) cluster(s), nodes on $(STORE); full output in $(SOAK_LOG)"
	@$(GO) test ./federation_test -run '^TestFaults$$' -count=1 -timeout 0 -v \
		-faults.seeds=$(SEEDS) -faults.first=$(FIRST) -faults.kinds=$(KINDS) -faults.clusters=$(CLUSTERS) -faults.store=$(STORE) 2>&1 | tee $(SOAK_LOG) | \
		grep --line-buffered -E 'faults_test.go:[0-9]+: (seed [0-9]+ \(|cluster of|[0-9]+ seeds with)|^(ok|FAIL)'

# A node on 127.0.0.1:7001 with one actor (vendor) and its data in ./data.
run: build
	$(BIN) serve --data ./data --listen 127.0.0.1:7001 --log-format console

# Three nodes (finder, vendor, coordinator) as local processes on 127.0.0.1
# and the fv story between them, through the command line, step by step.
# deploy/compose.yaml runs the same with docker compose.
demo: build story-deps
	bash deploy/demo.sh $(BIN)

# The node's container image, reporting the checkout's version (the
# build context has no git history, so the version is a build argument).
image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t vultron:$(VERSION) .

clean:
	rm -rf bin
