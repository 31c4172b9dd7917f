# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench venv clean

$(INSTALLED): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(INSTALLED)

venv: $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/python -m ingest.dev.demo

test: $(INSTALLED)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Throughput benchmarks (not tests): end to end on the local stack, then the worker path.
bench: $(INSTALLED)
	$(VENV)/bin/python -m benchmarks.throughput $(BENCH_ARGS)
	$(VENV)/bin/python -m benchmarks.worker_path $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .local-stack demo-lake build dist *.egg-info
