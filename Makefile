# govhub — the two commands a newcomer needs are `make demo` and `make test`.
# Only Python 3.11+ and make are assumed; everything else is installed into .venv.
# `make test` also needs PostgreSQL and Redis for `make smoke` (127.0.0.1:5432 user postgres and
# 127.0.0.1:6379 by default; .ci/run starts them).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CODE   := hub connectors scheduler

.PHONY: install demo test lint smoke format bench clean browser i18n screenshots

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "govhub needs Python 3.11 or newer (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# make demo PORT=9000 serves on another port (default 8000)
demo: install
	$(BIN)/govhub demo $(if $(PORT),--port $(PORT))

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(CODE)
	@# the benchmarks are the load targets' evidence: a script that cannot run fails here
	$(BIN)/mypy bench

# the browser tests drive Debian's Chromium (never a downloaded one); install it when missing
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update && apt-get install -y chromium fonts-wqy-microhei) \
	  || echo "chromium is missing: apt-get install -y chromium fonts-wqy-microhei (as root)" >&2; }

# the production install as compose.yaml's image does it: build the wheel, install it alone (no
# extras) into a fresh venv under a temporary folder, and from there run db upgrade, sandbox,
# serve, worker and beat on PostgreSQL (database govhub_smoke, reset) + Redis (db 14, flushed);
# one post goes to Weibo, WeChat and the hall. GOVHUB_SMOKE_DATABASE_URL / _REDIS_URL override.
smoke: install
	$(BIN)/python tests/smoke/run.py

# pytest in one process, or (GOVHUB_TEST_DATABASE_URL set, as .ci/run does) its PostgreSQL half
# and the rest side by side: tests/halves.py
test: lint browser smoke
	$(BIN)/python tests/halves.py

# the domain errors (hub/errors.py and its subclasses) take their message literal like N_()
ERROR_KEYWORDS = -k Reason -k HubError -k Invalid -k NotFound -k Forbidden -k Conflict -k TooManyAttempts -k NotAuthenticated -k TransitionError

# re-extract interface messages and merge them into the catalogs (hub/i18n/<locale>/LC_MESSAGES)
i18n: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ $(ERROR_KEYWORDS) --no-location -o hub/i18n/messages.pot .
	$(BIN)/pybabel update -i hub/i18n/messages.pot -d hub/i18n -l en  # the .pot has no locations, so neither has the .po

# retake docs/ui.md's screenshots: the browser tests that take them (SQLite only), then copied
# from test-artifacts/screenshots/ into docs/img/ (a missing one fails the target)
SHOT_TESTS := tests/e2e/test_editor_ui.py tests/e2e/test_workspace_browser.py \
  tests/e2e/test_live_pages_browser.py tests/e2e/test_media_browser.py \
  tests/e2e/test_proofread_browser.py tests/e2e/test_compose_wechat.py
SHOTS := dashboard dashboard-en compose compose-phone board board-failed hall posts admin-users \
  admin-orgs accounts audit calendar reach inbox clocks hall-answers media live-list live-new \
  live-console compose-proofread review-proofread live-console-proofread compose-wechat-push
screenshots: install browser
	rm -rf test-artifacts/screenshots
	env -u GOVHUB_TEST_DATABASE_URL -u GOVHUB_TEST_REDIS_URL $(BIN)/pytest -q -p no:cacheprovider $(SHOT_TESTS)
	@for shot in $(SHOTS); do cp test-artifacts/screenshots/$$shot.png docs/img/ || exit 1; done
	@echo "docs/img/: $(words $(SHOTS)) screenshots retaken"

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache *.egg-info
