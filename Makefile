# claude-gateway — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN        ?= bin/claude-gateway
GO         ?= go
GOFLAGS    ?= -trimpath
LDFLAGS    ?= -s -w
TEST_FLAGS ?= -timeout 60m
ADMIN      ?= $(or $(CLAUDE_ADMIN),localhost:2019)
CONFIG     ?= Caddyfile.dev

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the gateway binary (bin/claude-gateway): Caddy + the standard modules + ours.
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/claude-gateway

.PHONY: build-xcaddy
build-xcaddy: ## Build the same binary with xcaddy from xcaddy.json (bin/claude-gateway-xcaddy).
	scripts/xcaddy-build.sh bin/claude-gateway-xcaddy

.PHONY: run
run: build ## Run the gateway locally on Caddyfile.dev: https://localhost:8443, SQLite, internal CA.
	@mkdir -p data workspace
	$(BIN) run --config $(CONFIG) --adapter caddyfile

.PHONY: reload
reload: ## Reload the running gateway's config through the admin API.
	$(BIN) reload --config $(CONFIG) --adapter caddyfile --address $(ADMIN)

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: test-env
test-env: ## Install and start what the tests need (MariaDB, Chromium, wrk, the sandbox image).
	scripts/test-env.sh >/dev/null

.PHONY: sandbox-image
sandbox-image: ## Build the sandbox image claude-sandbox:local (debootstrap + docker import, no registry).
	scripts/sandbox-image.sh

.PHONY: test
test: build ## Run every test against real MariaDB, Docker and Chromium (prepared on first use).
	@env_lines=$$(scripts/test-env.sh) || exit 1; eval "$$env_lines"; \
	export CLAUDE_GATEWAY_BIN=$(CURDIR)/$(BIN); \
	$(GO) test $(TEST_FLAGS) -count=1 ./...

.PHONY: bench
bench: build ## Run the benchmarks (bench/run.sh): gateway vs bare proxy vs direct, and the Go benchmarks.
	bench/run.sh

.PHONY: clean
clean: ## Remove build output and local run data.
	rm -rf bin
