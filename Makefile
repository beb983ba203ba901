PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed

.PHONY: demo test install browser constraints cluster-up cluster-down clean docs

# pip's own output goes to .venv/install.log; on a failure its last lines are shown.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv .venv
	@echo "installing the project into .venv (pip's output: .venv/install.log)"
	@( $(PIP) install -q --upgrade pip && $(PIP) install -q -c constraints.txt -e '.[dev]' ) > .venv/install.log 2>&1 \
	  || { tail -n 30 .venv/install.log; echo "install failed: see .venv/install.log"; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# After an upgrade that passes `make test`: the exact versions become the new constraints.
constraints: $(STAMP)
	(head -n 2 constraints.txt; $(PIP) freeze --exclude ctt-mmc | grep -v '^-e') > constraints.new
	mv constraints.new constraints.txt

demo: $(STAMP)
	$(PY) jobs/demo.py

# Headless Chromium for the tests that open the MLflow UI (Debian's package; Playwright drives it).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] || { echo "make test needs chromium (apt-get install chromium)"; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; }

test: $(STAMP) browser
	$(PY) -m pytest -q --durations=15 tests

# The config reference is generated from the dataclasses (tests/test_docs.py checks it is current).
docs: $(STAMP)
	$(PY) -m ctt.config_reference > docs/config.md

WORKERS ?= 0

cluster-up: $(STAMP)
	$(PY) -m cluster.local up --workers $(WORKERS)

cluster-down:
	$(PY) -m cluster.local down

clean: cluster-down
	rm -rf data mlruns .cluster
