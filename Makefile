# Churn Saver. `make run` serves the embedded default; `make test` runs the whole suite.
.PHONY: install browser graphql-http-audit widget-tools widget run test test-sqlite fuzz bench lint format schema clean

# uv comes from PyPI (installed on first use); everything else is pinned in uv.lock.
UV := $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
export UV_LINK_MODE ?= copy

.venv/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv \
		|| python3 -m pip install --quiet --break-system-packages uv
	$(UV) sync --frozen
	@touch $@

install: .venv/.installed

# The browser tests drive Debian's chromium through Playwright; no browser build is ever downloaded.
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "/usr/bin/chromium is missing and installing it needs root: browser tests will be skipped" \
				"(install it with: sudo apt-get install chromium)"; \
		fi; }

# The GraphQL-over-HTTP audit suite (npm graphql-http), installed from its lock file; again only when
# the lock file changes. Without npm the audit test is skipped (and fails under .ci/run).
AUDIT_DIR := tests/http/graphql_http_audit
$(AUDIT_DIR)/node_modules/.package-lock.json: $(AUDIT_DIR)/package.json $(AUDIT_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(AUDIT_DIR) --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm is missing: the GraphQL-over-HTTP audit test will be skipped (install it with: sudo apt-get install npm)"; \
	fi

graphql-http-audit: $(AUDIT_DIR)/node_modules/.package-lock.json

# The widget's build tool (npm esbuild, from widgets/js/package-lock.json). `make widget` rebuilds
# widgets/static/churnsaver.js from widgets/js/src/; the built file is checked in and a test fails
# when it is stale. Without npm the rebuild test is skipped (the staleness check still runs).
WIDGET_DIR := widgets/js
$(WIDGET_DIR)/node_modules/.package-lock.json: $(WIDGET_DIR)/package.json $(WIDGET_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(WIDGET_DIR) --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm is missing: the widget rebuild test will be skipped (install it with: sudo apt-get install npm)"; \
	fi

widget-tools: $(WIDGET_DIR)/node_modules/.package-lock.json

widget: widget-tools
	node $(WIDGET_DIR)/build.mjs

run: install
	CHURNSAVER_DEMO=$${CHURNSAVER_DEMO:-1} $(UV) run churnsaver serve

# One pytest worker per core (pytest-xdist): the suite waits on subprocesses, servers and
# databases as much as it computes; worksteal hands a free worker the queued tests of a busy one,
# so a few long tests at the end do not leave a core idle. PYTEST_WORKERS=0 runs it in this process alone.
PYTEST_WORKERS ?= auto
test: install browser graphql-http-audit widget-tools
	$(UV) run pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The property-based tests alone, with many more examples than `make test` gives them.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(UV) run pytest -n $(PYTEST_WORKERS) -m fuzz $(PYTEST_ARGS)

bench: install
	$(UV) run python -m tests.bench

# mypy reads the code as the installed `churnsaver` namespace: .mypy/churnsaver points at this folder.
MYPY_PACKAGES := -p churnsaver.backend -p churnsaver.graphql -p churnsaver.jobs -p churnsaver.tenants -p churnsaver.widgets
lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	@mkdir -p .mypy && ln -sfn .. .mypy/churnsaver
	$(UV) run mypy $(MYPY_PACKAGES)

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

# Rewrite graphql/schema.graphql after an intended schema change (a test fails when it drifts).
schema: install
	$(UV) run python -m churnsaver.graphql.sdl > graphql/schema.graphql

clean:
	rm -rf .venv var .pytest_cache .ruff_cache build dist *.egg-info
