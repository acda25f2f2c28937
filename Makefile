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

.PHONY: claude-run
claude-run: ## Build the static run helper the workspace image carries (bin/claude-run; cmd/claude-run).
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/claude-run ./cmd/claude-run

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
test-env: ## Install and start what the tests need (MariaDB, Chromium, wrk, the sandbox and workspace images).
	scripts/test-env.sh >/dev/null

.PHONY: sandbox-image
sandbox-image: ## Build the sandbox image claude-sandbox:local (debootstrap + docker import, no registry).
	scripts/sandbox-image.sh

.PHONY: workspace-image
workspace-image: ## Build the workspace image claude-workspace:local (sandbox image + a code-server stand-in, no registry).
	scripts/workspace-image.sh

.PHONY: test
test: build ## Run every test against real MariaDB, Docker and Chromium (prepared on first use).
	@env_lines=$$(scripts/test-env.sh) || exit 1; eval "$$env_lines"; \
	export CLAUDE_GATEWAY_BIN=$(CURDIR)/$(BIN); \
	$(GO) test $(TEST_FLAGS) -count=1 ./...

.PHONY: stack-test
stack-test: build ## Start the whole compose stack on local stand-in images and check it end to end (deploy/stack_test.go).
	CLAUDE_STACK_TEST=1 CLAUDE_GATEWAY_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m -run '^TestStack$$' -v ./deploy/

.PHONY: standin-images
standin-images: ## Build the stack test's stand-in images (DinD, MySQL, app) without a registry.
	scripts/standin-images.sh

.PHONY: bench
bench: build ## Run the benchmarks (bench/run.sh): gateway vs bare proxy vs direct, and the Go benchmarks.
	bench/run.sh
	bench/handoff.sh

.PHONY: clean
clean: ## Remove build output and local run data.
	rm -rf bin

# ---------------------------------------------------------------------------------------------
# Deployment with Docker Compose: docker-compose.yml + docker-compose.dind.yml, settings in
# $(ENV_FILE) (see .env.example), secrets in $(SECRETS_DIR). Only the gateway publishes ports.
COMPOSE       ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
COMPOSE_FILES ?= -f docker-compose.yml -f docker-compose.dind.yml
ENV_FILE      ?= .env
DC             = $(COMPOSE) $(if $(wildcard $(ENV_FILE)),--env-file $(ENV_FILE)) $(COMPOSE_FILES)
GATEWAY_IMAGE ?= claude-gateway:local
SANDBOX_IMAGE ?= claude-sandbox:local
WORKSPACE_IMAGE ?= claude-workspace:4.96.2
# The directories compose reads from $(ENV_FILE) are the ones these targets use.
env_setting    = $(shell sed -n 's/^$(1)=//p' $(ENV_FILE) 2>/dev/null | tail -n1)
SECRETS_DIR   ?= $(or $(call env_setting,SECRETS_DIR),./secrets)
BACKUP_DIR    ?= $(or $(call env_setting,BACKUP_DIR),./backups)
SERVICE       ?=
# The daemon's client as the gateway uses it: TLS on 2376 with the client certificate.
DIND_CLI       = $(DC) exec -T dind env DOCKER_HOST=tcp://dind:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/certs/client docker

.PHONY: build-image
build-image: ## Build the gateway image only ($(GATEWAY_IMAGE)); other services are not rebuilt.
	docker build -t $(GATEWAY_IMAGE) .

.PHONY: secrets
secrets: ## Create missing secret files (random) in $(SECRETS_DIR): secret_key, mysql_password, mysql_root_password.
	@install -d -m 0700 $(SECRETS_DIR)
	@for s in secret_key mysql_password mysql_root_password; do \
		f=$(SECRETS_DIR)/$$s; [ -s $$f ] && continue; \
		head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $$f && chmod 0444 $$f && echo "created $$f"; \
	done

.PHONY: up
up: secrets ## Start the stack (gateway, frontend, backend, MySQL, DinD running the session workspaces) in the background.
	@[ -f $(ENV_FILE) ] || { echo "no $(ENV_FILE): cp .env.example $(ENV_FILE) and edit it"; exit 1; }
	$(DC) up -d
	@$(MAKE) --no-print-directory status

.PHONY: down
down: ## Stop and remove the stack's containers (volumes are kept).
	$(DC) down

.PHONY: logs
logs: ## Follow the logs (SERVICE=gateway for one service).
	$(DC) logs -f --tail=200 $(SERVICE)

.PHONY: status
status: ## Containers, their health, and the gateway's own probe.
	$(DC) ps
	@$(DC) exec -T gateway /usr/bin/claude-gateway healthcheck && echo "gateway: live" || echo "gateway: not answering"

.PHONY: stack-reload
stack-reload: ## Reload the running gateway container's Caddyfile (admin API on its unix socket).
	$(DC) exec -T gateway /usr/bin/claude-gateway reload --config /etc/caddy/Caddyfile --adapter caddyfile \
		--address unix//run/claude-gateway/admin.sock

.PHONY: dind-up
dind-up: ## Start only the DinD daemon.
	$(DC) up -d dind

.PHONY: dind-down
dind-down: ## Stop the DinD daemon (running executions end).
	$(DC) stop dind

.PHONY: dind-image
dind-image: ## Copy the sandbox image ($(SANDBOX_IMAGE)) from the host's engine into the daemon (it cannot pull).
	docker save $(SANDBOX_IMAGE) | $(DC) exec -T dind docker load

.PHONY: dind-workspace-image
dind-workspace-image: ## Copy the workspace image (WORKSPACE_IMAGE, default claude-workspace:4.96.2) into the daemon.
	docker save $(WORKSPACE_IMAGE) | $(DC) exec -T dind docker load

.PHONY: dind-test
dind-test: ## Check the daemon: TLS API answers, plaintext 2375 is closed, a sandbox run works offline.
	$(DIND_CLI) version
	@if $(DC) exec -T dind docker -H tcp://dind:2375 version >/dev/null 2>&1; then \
		echo "FAIL: the plaintext API on 2375 answers"; exit 1; else echo "ok: no plaintext API on 2375"; fi
	$(DIND_CLI) run --rm --network none --user 1000:1000 --read-only --cap-drop ALL \
		$(SANDBOX_IMAGE) python3 -c 'print("dind: sandbox ok")'

.PHONY: dind-stats
dind-stats: ## Containers, disk use and resource use inside the daemon.
	$(DIND_CLI) ps -a
	$(DIND_CLI) system df
	$(DIND_CLI) stats --no-stream

.PHONY: dind-clean
dind-clean: ## Remove stopped containers, dangling images and build cache inside the daemon.
	$(DIND_CLI) container prune -f
	$(DIND_CLI) image prune -f
	$(DIND_CLI) builder prune -f

# The workspace volume is archived through the DinD container (it mounts it at /workspaces
# and has tar; the gateway image has no shell), with numeric owners (the files are uid 1000's).
.PHONY: backup
backup: ## Dump MySQL and archive the workspace into $(BACKUP_DIR)/backup-<time>/.
	@dir=$(BACKUP_DIR)/backup-$$(date -u +%Y%m%dT%H%M%SZ); install -d -m 0700 $$dir && \
	$(DC) exec -T mysql sh -c 'MYSQL_PWD="$$(cat /run/secrets/mysql_root_password)" exec mysqldump -uroot \
		--single-transaction --routines --triggers --databases claude_gateway "$$MYSQL_DATABASE"' > $$dir/mysql.sql && \
	$(DC) exec -T dind tar --numeric-owner -C /workspaces -czf - . > $$dir/workspace.tar.gz && \
	echo "backup written to $$dir"

.PHONY: restore
restore: ## Restore BACKUP=<dir> (a backup-<time>/ directory): MySQL dump, then the workspace.
	@[ -n "$(BACKUP)" ] && [ -f "$(BACKUP)/mysql.sql" ] && [ -f "$(BACKUP)/workspace.tar.gz" ] || \
		{ echo "usage: make restore BACKUP=$(BACKUP_DIR)/backup-<time>"; exit 1; }
	$(DC) exec -T mysql sh -c 'MYSQL_PWD="$$(cat /run/secrets/mysql_root_password)" exec mysql -uroot' < $(BACKUP)/mysql.sql
	$(DC) exec -T dind tar --numeric-owner -C /workspaces -xzf - < $(BACKUP)/workspace.tar.gz
	$(DC) restart gateway

.PHONY: diagnostics
diagnostics: ## Print what a bug report needs: versions, containers, health, resources, recent logs.
	-docker version --format '{{.Server.Version}}'
	-$(COMPOSE) version
	-$(DC) ps
	-$(DC) exec -T gateway /usr/bin/claude-gateway version
	-$(DC) exec -T gateway /usr/bin/claude-gateway healthcheck
	-curl -sk --max-time 5 --resolve "$${DOMAIN:-localhost}:443:127.0.0.1" "https://$${DOMAIN:-localhost}/api/health"; echo
	-$(DC) exec -T mysql mysqladmin ping -h 127.0.0.1
	-$(DIND_CLI) info --format 'dind: {{.ServerVersion}}, {{.Containers}} containers, {{.Images}} images'
	-docker stats --no-stream
	-$(DC) logs --tail=50

# ---------------------------------------------------------------------------------------------
# Kubernetes (kubernetes/): N replicas on shared MySQL and a ReadWriteMany workspace.
.PHONY: k8s-config
k8s-config: ## Copy the production Caddyfile and its snippets into kubernetes/ (the ConfigMap's source) for `kubectl apply -k kubernetes/`.
	cp Caddyfile snippets.caddyfile kubernetes/

.PHONY: dind-certs
dind-certs: ## Write the DinD daemon's mutual-TLS certificates for Kubernetes into $(SECRETS_DIR)/dind.
	deploy/dind-certs.sh $(SECRETS_DIR)/dind
