# Set-up is implicit: every target that needs the virtualenv builds it first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Most tests wait on sockets and servers, so they run three at a time; the heavy ones
# (marked serial: whole experiment suites, load tests, timing against ground truth) after, alone.
# The type check runs beside the first phase (it needs one core for half a minute, while those
# tests mostly wait); its report follows the phase's.
test: $(STAMP)
	$(BIN)/ruff check .
	@$(BIN)/mypy > $(VENV)/mypy.log 2>&1 & types=$$!; \
	$(BIN)/python -m pytest -m "not serial" -n 3 --dist loadfile; tests=$$?; \
	wait $$types; typed=$$?; echo "mypy:"; cat $(VENV)/mypy.log; \
	test $$tests -eq 0 && test $$typed -eq 0
	$(BIN)/python -m pytest -m serial

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.engine --write bench/RESULTS.md

demo: $(STAMP)
	$(BIN)/chaos-service demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
