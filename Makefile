# The two commands a new clone needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CLIENT := clients/typescript
NPM_CI := npm ci --prefer-offline --no-audit --no-fund

.PHONY: install lock run migrate test browser proxies shells calendar-parsers lint format client fuzz bench bench-abuse clean

## Install exactly what requirements/dev.txt locks, every file checked against its hash, then the
## project itself (editable, no dependencies of its own); `pip check` fails when pyproject.toml
## needs a package the lock lacks (run `make lock`).
$(INSTALLED): pyproject.toml requirements/pip.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/pip.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || (echo "pyproject.toml asks for a package requirements/dev.txt lacks: make lock" >&2; false)
	touch $(INSTALLED)

install: $(INSTALLED)

## Regenerate requirements/*.txt from pyproject.toml's pins after a dependency changes (uv, from
## PyPI; seconds). Keeps locked versions pyproject.toml still allows; see scripts/lock.
lock:
	scripts/lock

## Serve on http://127.0.0.1:8000 with the embedded SQLite database and a development secret.
run: install
	TODO_DEV_MODE=1 $(BIN)/todo migrate
	TODO_DEV_MODE=1 $(BIN)/todo serve

## Upgrade the database at TODO_DATABASE_URL (default: ./todo.db) to the newest schema.
migrate: install
	TODO_DEV_MODE=1 $(BIN)/todo migrate

## Lint, architecture contracts, types, and the whole test suite with branch coverage of the three
## packages: below the floor in pyproject.toml ([tool.coverage.report] fail_under), it fails. The
## suite runs in TEST_WORKERS processes (pytest-xdist; 0: in this one), then the tests marked `alone`
## (they bound times) in this one, with the machine to themselves; see docs/development.md.
TEST_WORKERS ?= 3
test: lint browser proxies shells calendar-parsers
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 -m "not alone" --cov --cov-fail-under=0 --cov-report=
	$(BIN)/python -m pytest --durations=5 -m alone --cov --cov-append --cov-report=term:skip-covered

## Chromium, for the test that renders /docs and /redoc (tests/system/test_docs_in_a_browser.py) and the one
## that calls the API from a page of another origin (tests/system/test_cross_origin_in_a_browser.py), from the
## system packages when missing. Where it cannot be installed (not root) that test skips, unless
## TODO_REQUIRE_POSTGRES=1 (CI) makes it fail.
browser:
	@command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
		|| echo "chromium could not be installed: the browser test will skip (or fail in CI)"

## libical-glib for the system Python (what GNOME Evolution parses calendars with), for the test that reads
## the calendars with real parsers (tests/interop/test_calendar_parsers.py; ical.js comes from its
## package-lock.json), from the system packages when missing. Where it cannot be installed (not root) that
## test skips, unless TODO_REQUIRE_INTEROP=1 (CI) makes it fail.
calendar-parsers:
	@/usr/bin/python3 -c "import gi; gi.require_version('ICalGLib', '3.0')" 2>/dev/null \
		|| DEBIAN_FRONTEND=noninteractive apt-get install -y gir1.2-ical-3.0 python3-gi \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y gir1.2-ical-3.0 python3-gi) \
		|| echo "libical-glib could not be installed: the calendar parser test will skip (or fail in CI)"

## PgBouncer and nginx, for the test that runs two replicas behind both (tests/system/test_behind_a_pooler.py),
## and envsubst (gettext-base), which renders nginx's template, from the system packages when missing (their
## services are not started). Where they cannot be installed (not root) that test skips, unless
## TODO_REQUIRE_POSTGRES=1 (CI) makes it fail.
proxies:
	@(command -v pgbouncer && command -v nginx && command -v envsubst) >/dev/null \
		|| DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer nginx gettext-base \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer nginx gettext-base) \
		|| echo "pgbouncer, nginx or envsubst could not be installed: the pooler test will skip (or fail in CI)"

## zsh (bash is there already), for the test that pastes every `sh` block of README.md and docs/*.md into
## both (tests/system/test_docs_shell_blocks.py), from the system packages when missing. Where it cannot be
## installed (not root) that test skips, unless TODO_REQUIRE_POSTGRES=1 (CI) makes it fail.
shells:
	@(command -v bash && command -v zsh) >/dev/null \
		|| DEBIAN_FRONTEND=noninteractive apt-get install -y bash zsh \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bash zsh) \
		|| echo "bash or zsh could not be installed: the pasted-sessions test will skip (or fail in CI)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerate the TypeScript client's types from the OpenAPI document the server serves, and type-check
## the client and its example against them (`make test` fails while the types differ). Needs Node.js 20
## and npm. Leaves the document in clients/typescript/openapi.json (not committed).
client: install $(CLIENT)/node_modules/.package-lock.json
	TODO_DEV_MODE=1 $(BIN)/todo openapi > $(CLIENT)/openapi.json
	cd $(CLIENT) && npx openapi-typescript openapi.json -o src/schema.d.ts
	cd $(CLIENT) && npx tsc -p .

$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package-lock.json
	cd $(CLIENT) && $(NPM_CI)

## Fuzz the API from its OpenAPI document (schemathesis; TODO_FUZZ_SECONDS, default 300; `make test`
## runs the same for 60 s on PostgreSQL).
fuzz: install
	scripts/fuzz

## Benchmark todo against a ceiling and a naive app on PostgreSQL and SQLite (~9 minutes; results in
## bench/results/). Needs PostgreSQL (TODO_BENCH_DATABASE_URL, default the local server as postgres) and
## wrk (installed from the system packages when missing). BENCH_SECONDS=3 BENCH_ROUNDS=1 for a quick run.
bench: install
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/bench.txt
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run

## Only the abuse scenarios of issue 19 (~8 minutes; `make bench` runs them too): calendar pollers, slow
## exports, a large import, a greedy user, many event streams, each against another user's latency, on
## PostgreSQL and SQLite; results in bench/results/<date>-abuse/. BENCH_ONLY=abuse-greedy,… for some of them.
bench-abuse:
	BENCH_ONLY=$${BENCH_ONLY:-abuse} $(MAKE) bench

clean:
	rm -rf $(VENV) $(CLIENT)/node_modules .coverage .coverage.* htmlcov .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis todo.db todo.db-*
