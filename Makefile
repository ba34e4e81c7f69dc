# The two commands of the README: `make run` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run serve test test-browser lint bench cluster-test screenshots clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# A clone that ran `make run` is a development clone: .env says so, so that management commands
# (createsuperuser, create_access_token, ...) work in it without setting anything. The mail
# worker runs beside the server (mail prints on this console) and links in mail name PORT;
# Ctrl-C stops both.
run: $(STAMP)
	test -f .env || printf 'DEBUG=true\n' > .env
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG:-true} PORT=$(PORT) sh -c '$(BIN)/python manage.py send_queued_mail & worker=$$!; \
	  trap "kill -TERM $$worker 2>/dev/null; wait $$worker" EXIT INT TERM; \
	  $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)'

# The production set-up of one server, as docs/deploy.md runs it on each machine: DEBUG off,
# configured from the environment (SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, EMAIL_URL, ...),
# migrate and collectstatic, then gunicorn with config/gunicorn.py (uvicorn workers: pages, API
# and streaming turns) on PORT, and the mail worker beside it; Ctrl-C or SIGTERM stops both
# (open turns drain first, up to GATEWAY_DRAIN_SECONDS).
serve: $(STAMP)
	DEBUG=false $(BIN)/python manage.py migrate --noinput
	DEBUG=false $(BIN)/python manage.py collectstatic --noinput -v0
	DEBUG=false PORT=$(PORT) sh -c '$(BIN)/python manage.py send_queued_mail & worker=$$!; \
	  trap "kill -TERM $$worker 2>/dev/null; wait $$worker" EXIT INT TERM; \
	  $(BIN)/gunicorn -c config/gunicorn.py config.asgi:application'

# The whole suite, browser tests included when Chromium is installed (CI=true makes a missing
# browser a failure).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The site as on several servers: haproxy, two gunicorn instances, PgBouncer, Redis (see
# docs/deploy.md). CI runs it after the test suites.
cluster-test: $(STAMP)
	bash .ci/cluster-test

# Pictures of the main pages for the README (light and dark, wide and phone), remade after a change.
screenshots: $(STAMP)
	$(BIN)/python docs/screenshots/take.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
