# Two commands on a fresh machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app web.wsgi

.PHONY: help install run test test-unit lint web worker flower migrate bench bench-timing test-services test-postgres clean

help:
	@echo "make run     start web, worker, Flower, embedded Redis and an SMTP sink (SQLite)"
	@echo "make test    install and run the whole test suite (again on local PostgreSQL/Redis if up)"
	@echo "make web | worker | flower   one role, configured by the environment (run any number)"
	@echo "make lint    ruff and the import boundaries"
	@echo "make bench   the benchmark: a few minutes, prints a table, writes artifacts/bench.json"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m scripts.run_local

test: $(STAMP)
	bash scripts/ensure_debian_packages.sh
	$(BIN)/python -m pytest
	$(BIN)/python -m scripts.test_against_services -m "not browser"

# The suite against PostgreSQL and a standalone Redis on their standard local ports (or
# TEST_DATABASE_URL / TEST_REDIS_URL); each one that does not answer is skipped, with why.
test-services test-postgres: $(STAMP)
	$(BIN)/python -m scripts.test_against_services -m "not browser"

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

migrate: $(STAMP)
	$(FLASK) db upgrade

web: $(STAMP) migrate
	$(BIN)/gunicorn --config gunicorn.conf.py --bind 127.0.0.1:$${PORT:-5000} --workers $${WEB_CONCURRENCY:-2} web.wsgi:app

# Every worker also runs the outbox relay (worker/relay_thread.py): no beat to keep alive.
worker: $(STAMP)
	$(BIN)/celery -A worker.celery_app:celery_app worker -Q email --loglevel INFO

flower: $(STAMP)
	$(BIN)/celery -A worker.celery_app:celery_app flower --address=127.0.0.1 --port=$${FLOWER_PORT:-5555}

# Starts its own Redis, SMTP sink, celery worker and gunicorn on loopback. BENCH_ARGS=--help.
bench: $(STAMP)
	$(BIN)/python -m bench.run --json artifacts/bench.json $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Timing parity of the reset form (known vs unknown addresses) against the real stack.
.PHONY: bench-timing
bench-timing: $(STAMP)
	$(BIN)/python -m bench.timing_parity --compare known $(BENCH_TIMING_ARGS)
	$(BIN)/python -m bench.timing_parity --compare throttled $(BENCH_TIMING_ARGS)
