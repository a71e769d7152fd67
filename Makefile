# Two commands do all the set-up on a fresh machine:
#   make demo   - virtualenv, install, fetch MovieLens-100K, run the main job end to end
#   make test   - the same set-up, then the default test suite (slow/benchmark tests excluded)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow benchmark lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[text,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fewrec data fetch movielens-100k
	$(BIN)/fewrec demo

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or benchmark"

benchmark: $(STAMP)
	for p in warm cold-user cold-item tallrec; do \
		$(BIN)/fewrec benchmark --protocol $$p --output benchmarks/$$p.json || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
