# `make help` lists the targets. Every target installs into .venv first when pyproject.toml changed.
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
EPOCHS ?= 10
CELLS ?= vae1-k1,vae1-k5,vae1-k50,iwae1-k1,iwae1-k5,iwae1-k50,vae2-k1,vae2-k5,vae2-k50,iwae2-k1,iwae2-k5,iwae2-k50
BUDGET ?= 1.0
BATCH ?=
JOBS ?= 1

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install the package with its test and docs tools

train: $(VENV)/.installed ## Train on the embedded default data (ARGS="model=conv latent=16" to override)
	$(PY) src/train.py $(ARGS)

test: $(VENV)/.installed ## The fast tests: maths and wiring on tiny models, no subprocess or long fit (under 3 minutes)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=20 -m "not slow" tests  # tiny models: a second thread only contends

test-full: $(VENV)/.installed ## Every test, the slow ones too (CLI subprocesses, DDP, the wheel, the zoo's full product), as CI runs them
	$(PY) -m pytest -q --durations=20 tests

lint: $(VENV)/.installed ## Lint (ruff) and type-check (mypy) the whole tree, as CI does
	$(PY) -m ruff check .
	$(PY) -m mypy

docs: $(VENV)/.installed ## Build the documentation site into site/ (strict: a broken link or API reference fails)
	$(PY) -m mkdocs build --strict

wheel: $(VENV)/.installed ## Build the wheel into dist/ (pip install dist/vae_zoo-*.whl gives vae-train, vae-eval, vae-sample)
	$(PY) -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

bench: $(VENV)/.installed ## Time the project against three references on full MNIST (EPOCHS=3 to shorten)
	$(PY) benchmarks/bench.py --epochs $(EPOCHS) $(BENCH_ARGS)

bench-overhead: $(VENV)/.installed ## The same with a near-zero model (latent 2, hidden 8): host overhead per step
	$(PY) benchmarks/bench.py --model tiny --epochs $(EPOCHS) $(BENCH_ARGS)

bench-resnet: $(VENV)/.installed ## The same with model=resnet on 32x32 colour images (CIFAR-10 or random)
	$(PY) benchmarks/bench.py --model resnet --epochs $(EPOCHS) $(BENCH_ARGS)

bench-step: $(VENV)/.installed ## The training step alone in one process: the project (1 and 10 steps a call) and the raw loops alternated
	$(PY) benchmarks/bench.py --alternated --repeats 6 $(BENCH_ARGS)

bench-eval: $(VENV)/.installed ## Time log p(x), k = 5000, on the 10,000 MNIST test digits against a raw loop
	$(PY) benchmarks/bench.py --eval $(BENCH_ARGS)

clean: ## Remove run outputs (keeps .venv)
	rm -rf outputs/2* outputs/multirun outputs/slurm .pytest_cache build dist site

reproduce: $(VENV)/.installed ## Burda et al. 2016's Table 1 on full MNIST (CELLS=vae1-k1,iwae1-k5,recipe,ladder BUDGET=0.1 BATCH=128 JOBS=1)
	$(PY) benchmarks/reproduce.py --cells $(CELLS) --budget $(BUDGET) $(if $(BATCH),--batch-size $(BATCH)) --jobs $(JOBS) $(REPRODUCE_ARGS)

.PHONY: help install train test test-full lint docs wheel bench bench-overhead bench-resnet bench-step bench-eval reproduce clean
