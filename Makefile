# adaptcast — two commands for a new user: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.adaptcast-installed
KAFKA_PORT ?= 9092
PYTEST_ARGS ?=
# test processes (pytest-xdist; each test file runs whole in one, each process has its own broker); 0: one
TEST_WORKERS ?= 2
DEMO_SECONDS ?= 60
METRICS_TARGET ?= 127.0.0.1:9108
PROMETHEUS_PORT ?= 9090

.DEFAULT_GOAL := help
.PHONY: help setup run lint format test test-fast prometheus monitor monitor-down kafka-up kafka-down demo-live k8s-monitoring bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install adaptcast (editable, with the dev extra); a no-op when pyproject.toml is unchanged

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "adaptcast needs Python >= 3.11; set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	# no wheel cache: torch's CUDA build and its libraries are ~3 GB the venv already holds once
	$(PY) -m pip install --quiet --no-cache-dir -e '.[dev]'
	@touch $(STAMP)

run: setup ## Stream the embedded default scenario through the loop (no broker needed) and print a summary
	$(VENV)/bin/adaptcast run --metrics-port 0

lint: setup ## Check formatting and lint rules (ruff, configured in pyproject.toml)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: setup ## Reformat the code and apply safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint prometheus ## Lint, then run the whole suite in TEST_WORKERS (2) processes; it starts (and stops) its own Kafka broker unless KAFKA_BOOTSTRAP_SERVERS is set
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: lint ## Lint, then the suite without the tests that need Java/Kafka
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not kafka" $(PYTEST_ARGS)

prometheus: setup ## Install the Debian prometheus package (prometheus, promtool) if missing; a note where apt cannot
	$(PY) -m adaptcast.deploy.monitoring install --optional

monitor: setup ## Start Prometheus scraping a running `adaptcast run` on METRICS_TARGET (127.0.0.1:9108); print its URL
	$(PY) -m adaptcast.deploy.monitoring up --target $(METRICS_TARGET) --port $(PROMETHEUS_PORT)

monitor-down: setup ## Stop the Prometheus started by make monitor
	$(PY) -m adaptcast.deploy.monitoring down

kafka-up: setup ## Start a local broker in the background on 127.0.0.1:9092 (KAFKA_PORT=N overrides)
	$(PY) -m adaptcast.deploy.kafka up --port $(KAFKA_PORT)

kafka-down: setup ## Stop the broker started by kafka-up
	$(PY) -m adaptcast.deploy.kafka down

demo-live: setup ## Local broker + replayed scenario + live worker with a one-line status, for DEMO_SECONDS (60)
	$(PY) -m adaptcast.deploy.demo_live --seconds $(DEMO_SECONDS)

k8s-monitoring: setup ## Regenerate k8s/base/monitoring/ from deploy/prometheus/rules/ and deploy/grafana/dashboards/
	$(PY) -m adaptcast.deploy.k8s_monitoring

bench: setup ## Run the quick benchmarks (each prints a JSON summary)
	@for b in $(BENCHES); do echo "== $$b"; $(PY) $$b || exit 1; done

BENCHES ?= $(wildcard bench/adaptation_micro.py bench/arnet_scaling.py)

clean: ## Remove caches and build leftovers (keeps .venv)
	rm -rf .pytest_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
