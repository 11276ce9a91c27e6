# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-ray test-browser lint bench clean profiles golden mutants

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/searchsim compare scenarios/chatgpt_equivalent.toml scenarios/two_stage.toml
	@echo
	@echo "The same fleets timed by the calibrated roofline (docs/accuracy.md) instead of the"
	@echo "article's 2N FLOPs at 21.3% MFU, which is a cost model and not a latency model:"
	$(BIN)/searchsim compare scenarios/chatgpt_equivalent.toml scenarios/two_stage.toml \
	  --set llm.step_model=roofline

test: $(VENV)/.installed-test
	$(BIN)/ruff check sim cli tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Reports rendered in a real headless browser (Debian's chromium; skipped without one).
test-browser: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m browser

# The Ray backend (the `ray` extra, ~80 MB) against a local Ray instance the tests start.
test-ray: $(VENV)/.installed-test
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	$(BIN)/python -m pytest -q -m ray

bench: $(VENV)/.installed
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# The shipped step-time profiles, re-fitted from the shipped measurements (see docs/accuracy.md).
profiles: $(VENV)/.installed
	$(BIN)/searchsim calibrate shipped --source SW --name splitwise --force \
	  --description "Splitwise's DGX-A100/H100 profile: Llama-2-70B and BLOOM-176B, TP 2-8 (2023 PyTorch serving stack)" \
	  --out sim/data/profiles/splitwise.toml
	$(BIN)/searchsim calibrate shipped --source FT,LA --name fastertransformer --force \
	  --description "FasterTransformer GPT 6.7B-175B on A100 SXM, TP 1-8 (2021-22 kernels)" \
	  --out sim/data/profiles/fastertransformer.toml
	$(BIN)/searchsim calibrate-serving shipped --base vllm-v1 --name vllm-v1 --force \
	  --description "CUDA-graph engine (vLLM V1, 2025-26): Splitwise's A100/H100 hardware fits; engine terms and the RTX 4090 / RTX PRO 6000 families fitted to vLLM 0.19 serving runs" \
	  --out sim/data/profiles/vllm-v1.toml
	$(BIN)/searchsim calibrate-serving shipped --throughput --moe --engine trtllm --base trtllm \
	  --name trtllm --force \
	  --description "TensorRT-LLM (PyTorch backend, 2025): vllm-v1's terms with FP8 Hopper and FP4 Blackwell GEMM efficiencies, Blackwell memory efficiency, host time per layer and per sequence, and mixture-of-experts terms fitted to TensorRT-LLM's throughput table (1K/1K and 1K/8K rows); all-to-all from DeepEP's kernels" \
	  --out sim/data/profiles/trtllm.toml
