# Two commands do everything on a fresh machine:
#   make book   # virtual environment, chapters executed at PROFILE, HTML in _build/html
#   make test   # the test suite (what CI runs)
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= ci
PARAMS  ?=
ONLY    ?=
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install book execute test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[book,test]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/implicitreg book --profile $(PROFILE) $(if $(PARAMS),--params $(PARAMS)) $(if $(ONLY),--only $(ONLY))

# Execute chapters without building the HTML (e.g. ONLY=sgd_vs_gd).
execute: $(STAMP)
	$(BIN)/implicitreg book --no-build --profile $(PROFILE) $(if $(PARAMS),--params $(PARAMS)) $(if $(ONLY),--only $(ONLY))

# pytest exits 5 when it collects no test: report it, do not fail on it.
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/implicitreg bench

clean:
	rm -rf _build
