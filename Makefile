# `make help` lists the targets. Every target installs into .venv first when pyproject.toml changed.
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
EPOCHS ?= 10

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install the package with its test tools

train: $(VENV)/.installed ## Train on the embedded default data (ARGS="model=conv latent=16" to override)
	$(PY) src/train.py $(ARGS)

test: $(VENV)/.installed ## Run the test suite
	$(PY) -m pytest -q tests

bench: $(VENV)/.installed ## Time the project against three references on full MNIST (EPOCHS=3 to shorten)
	$(PY) benchmarks/bench.py --epochs $(EPOCHS) $(BENCH_ARGS)

bench-overhead: $(VENV)/.installed ## The same with a near-zero model (latent 2, hidden 8): host overhead per step
	$(PY) benchmarks/bench.py --model tiny --epochs $(EPOCHS) $(BENCH_ARGS)

bench-resnet: $(VENV)/.installed ## The same with model=resnet on 32x32 colour images (CIFAR-10 or random)
	$(PY) benchmarks/bench.py --model resnet --epochs $(EPOCHS) $(BENCH_ARGS)

bench-eval: $(VENV)/.installed ## Time log p(x), k = 5000, on the 10,000 MNIST test digits against a raw loop
	$(PY) benchmarks/bench.py --eval $(BENCH_ARGS)

clean: ## Remove run outputs (keeps .venv)
	rm -rf outputs/2* outputs/multirun .pytest_cache

.PHONY: help install train test bench bench-overhead bench-resnet bench-eval clean
