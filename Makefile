# idds-crd developer commands. Everything installs into ./.venv from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: demo test lint check-policies serve clean lock

$(BIN)/python:
	@echo "creating ./.venv with $(PYTHON) ..."
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "$(PYTHON) -m venv failed: Python's venv module is needed (Debian: apt-get install python3-venv)" >&2; exit 1; }
	@$(PIP) install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }

## Install the service with its demo FHIR server and run the built-in demo (one line per step;
## pip's own output goes to .venv/install.log and is shown only when the install fails).
demo: $(BIN)/python
	@echo "install: idds-crd and its demo FHIR server into ./.venv (about a minute the first time) ..."
	@$(PIP) install --quiet '.[demo]' > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(BIN)/idds-crd demo

## Install the service with its test tools and the Debian servers the suite starts (.ci/debian-packages),
## lint, and run the whole test suite.
test: $(BIN)/python
	@.ci/debian-packages
	$(PIP) install --quiet -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/python -m pytest || { status=$$?; [ $$status -ne 5 ] || echo "pytest collected no tests" >&2; exit $$status; }

lint: $(BIN)/python
	$(BIN)/ruff check .

check-policies: $(BIN)/python
	$(PIP) install --quiet .
	$(BIN)/idds-crd policies check

serve: $(BIN)/python
	$(PIP) install --quiet .
	$(BIN)/idds-crd serve

## Pin every package the Docker image installs (the service and its PostgreSQL driver) in
## docker/constraints.txt, from a fresh install into a throwaway venv; run after changing dependencies.
lock:
	@rm -rf /tmp/idds-crd-lock && $(PYTHON) -m venv /tmp/idds-crd-lock
	@/tmp/idds-crd-lock/bin/python -m pip install --quiet --disable-pip-version-check '.[postgres]'
	@{ echo "# Written by \`make lock\`: the versions the Docker image installs. Do not edit by hand."; \
	  /tmp/idds-crd-lock/bin/python -m pip freeze --disable-pip-version-check --exclude idds-crd; } \
	  > docker/constraints.txt
	@rm -rf /tmp/idds-crd-lock
	@echo "docker/constraints.txt: $$(grep -c '==' docker/constraints.txt) packages pinned"

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
