# gatehouse — see README.md. `make run` and `make test` work on a fresh Debian machine with Go.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.buildVersion=$(VERSION)
BIN      := bin/gatehouse
CONFIG   ?= config.example.yml
# The whole suite; CI allows 90 minutes, we aim well under 15.
TEST_TIMEOUT ?= 12m

.PHONY: run build release test test-go test-fuzz deps lint fuzz bench loadtest statebench clean

# The benchmark targets pipe their report through tee: fail when the tool fails, not tee.
bench loadtest statebench: SHELL := /bin/bash
bench loadtest statebench: .SHELLFLAGS := -o pipefail -c

run: build
	./$(BIN) run -config $(CONFIG)

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gatehouse

# release cross-compiles static, reproducible binaries (no cgo) for linux/amd64, linux/arm64 and
# linux/arm v7 into dist/ with SHA256SUMS; the flags are in .ci/release. Two builds of one commit
# give identical bytes (TestReleaseReproducible); the arm64 one is smoke-tested under qemu in
# make test (TestARM64Smoke).
release:
	@rm -rf dist
	@GO=$(GO) .ci/release dist $(VERSION)

# deps installs the programs the tests drive for real (nginx + libnginx-mod-rtmp, ffmpeg,
# chromium, wrk, redis-server, qemu-user-static) with apt-get when they are missing. It needs root only when something is missing.
deps:
	@.ci/install-deps

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: deps lint test-go test-fuzz

test-go:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# test-fuzz runs every fuzz target for FUZZTIME_SHORT (24 targets: 95–160 s with builds on 2 cores)
# with minimisation bounded, so each target explores instead of minimising; fuzz runs them longer.
# A crasher fails the run and stays in the package's testdata/fuzz/ as a corpus entry, which
# test-go replays from then on. See .ci/fuzz.
FUZZTIME_SHORT ?= 3s
FUZZTIME ?= 60s
test-fuzz:
	@.ci/fuzz $(FUZZTIME_SHORT) 1x

fuzz:
	@.ci/fuzz $(FUZZTIME) 10s

# bench runs the Go benchmarks, the HTTP load comparison of every hook endpoint against a bare
# handler (wrk), the SFU load comparison against a naive pion forwarder, and the origin's CPU
# with 100 viewers on one edge vs on the origin itself (sfubench edge). Raw output goes to
# bench-out/; docs/benchmarks.md records a run with its machine and method. About 14 minutes.
bench: deps build
	@mkdir -p bench-out
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./... | tee bench-out/go-bench.txt
	$(GO) run ./cmd/hookbench -gatehouse ./$(BIN) | tee bench-out/hookbench.md
	$(GO) run ./cmd/sfubench run -workloads fanout,simulcast -out bench-out/sfubench.md | tee bench-out/sfubench.log
	$(GO) run ./cmd/sfubench run -workloads room -n 4,8 -out bench-out/sfubench-room.md | tee bench-out/sfubench-room.log
	$(GO) run ./cmd/sfubench run -workloads edge -modes gatehouse -n 100 -out bench-out/sfubench-edge.md | tee bench-out/sfubench-edge.log

# loadtest holds every hook endpoint of the built binary for LOADTIME at 80 % of its measured
# maximum with a 70/30 allowed/denied mix and a brute-force source (cmd/loadtest), and fails on
# any error or on goroutines that do not return to their baseline. About 6 minutes.
LOADTIME ?= 60s
loadtest: build
	@mkdir -p bench-out
	$(GO) run ./cmd/loadtest -gatehouse ./$(BIN) -duration $(LOADTIME) | tee bench-out/loadtest.md

# statebench compares the built binary with the state in process and in Redis (a redis-server it
# starts itself on a free loopback port and stops at exit) in one run: decision throughput of
# cached decisions and of managed stream keys, STATEROUNDS rounds of STATEROUND per class and
# mode, alternating A,B / B,A; then the latency of a key revoked on one replica until the other
# ends the session holding it, STATEREVS times (cmd/loadtest -state). It fails on any wrong
# answer and when a cached decision sends commands to Redis. About 3 minutes.
STATEROUND ?= 10s
STATEROUNDS ?= 4
STATEREVS ?= 200
statebench: deps build
	@mkdir -p bench-out
	$(GO) run ./cmd/loadtest -gatehouse ./$(BIN) -state -round $(STATEROUND) -rounds $(STATEROUNDS) -revocations $(STATEREVS) | tee bench-out/statebench.md

clean:
	rm -rf bin bench-out dist
