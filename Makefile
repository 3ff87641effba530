# Plume: `make test` runs every test, `make demo` runs the donations demo.

# Every Go module in the repository (the core and its optional add-ons).
MODULES := $(shell find . -name go.mod -not -path './node_modules/*' -exec dirname {} \; | sort)
GOTEST_FLAGS ?= -race -count=1 -timeout 10m

.PHONY: test demo bench js lint vet fmt-check

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

js: node_modules/.package-lock.json

lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done

test: js lint
	@for m in $(MODULES); do echo "== go test $$m"; (cd $$m && go test $(GOTEST_FLAGS) ./...) || exit 1; done

# The donations demo; pass flags with e.g. make demo DEMO_FLAGS='-db :memory: -addr 127.0.0.1:4001'.
demo: js
	go run ./examples/donations $(DEMO_FLAGS)

# Plume against Centrifuge (bench/run.sh; a few minutes). The figures in
# docs/benchmarks.md come from BENCH_SIZE=full; microbenchmarks are listed there.
bench:
	bench/run.sh
