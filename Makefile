PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed

.PHONY: demo test install constraints cluster-up cluster-down clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# After an upgrade that passes `make test`: the exact versions become the new constraints.
constraints: $(STAMP)
	(head -n 2 constraints.txt; $(PIP) freeze --exclude ctt-mmc | grep -v '^-e') > constraints.new
	mv constraints.new constraints.txt

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
