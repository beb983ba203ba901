PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed

.PHONY: demo test install cluster-up cluster-down clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) jobs/demo.py

test: $(STAMP)
	$(PY) -m pytest -q --durations=15 tests

WORKERS ?= 0

cluster-up: $(STAMP)
	$(PY) -m cluster.local up --workers $(WORKERS)

cluster-down:
	$(PY) -m cluster.local down

clean: cluster-down
	rm -rf data mlruns .cluster
