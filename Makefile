# Two commands do everything on a fresh machine:
#   make book   # virtual environment, chapters executed at PROFILE, HTML in _build/html
#   make test   # the test suite (what CI runs)
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= ci
PARAMS  ?=
ONLY    ?=
EXTRAS  ?= book,test,cluster
BIN     := $(VENV)/bin
# Where the chapters' runs train: BACKEND=local|ray, WORKERS=n, RAY_ADDRESS=..., RAY_GPUS=g
RUNNER  := $(if $(BACKEND),--backend $(BACKEND)) $(if $(WORKERS),--workers $(WORKERS)) \
           $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS)) $(if $(RAY_GPUS),--ray-gpus $(RAY_GPUS))
STAMP   := $(VENV)/.installed

.PHONY: install book execute test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/implicitreg book --profile $(PROFILE) $(if $(PARAMS),--params $(PARAMS)) $(if $(ONLY),--only $(ONLY)) $(RUNNER)

# Execute chapters without building the HTML (e.g. ONLY=sgd_vs_gd).
execute: $(STAMP)
	$(BIN)/implicitreg book --no-build --profile $(PROFILE) $(if $(PARAMS),--params $(PARAMS)) $(if $(ONLY),--only $(ONLY)) $(RUNNER)

# A run that collects no test fails (pytest's exit status 5). The suite includes a check
# of the golden runs in a process forced to the lowest x86-64 instruction set and one
# thread (tests/test_golden.py), so that numbers that hold on one CPU only cannot land.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/implicitreg bench

clean:
	rm -rf _build
