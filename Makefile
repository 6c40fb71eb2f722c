# Two commands do all the set-up: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; override for another build, e.g. make TORCH=torch==2.13.0+cu128
TORCH ?= torch==2.13.0

.PHONY: train test check lint data browser postgres wheel-check default-model docs clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[keras]"
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.docs: $(VENV)/.base
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $@

# The documentation site, docs/_build/html, warnings as errors: the pages, the command-line
# reference from the parser, the API from the docstrings, the notebook, the results tables.
docs: $(VENV)/.docs
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# The dataset: a verified local copy, else the Debian/Ubuntu package, else a download.
data: $(VENV)/.base
	@$(PY) -m fmnist data --no-download >/dev/null 2>&1 || sh scripts/apt-install.sh dataset-fashion-mnist
	$(PY) -m fmnist data

train: $(VENV)/.base data
	$(PY) train_model.py

# The packaged default model (src/fmnist/weights/default.*) and the documentation's pictures
# of it (docs/images/tutorial/, docs/images/trust/), rewritten together: the one way they change.
default-model: $(VENV)/.test data
	$(PY) train_model.py --model-path src/fmnist/weights/default.h5 --plots docs/images/tutorial
	$(PY) scripts/docs_pictures.py --model default --out docs/images/trust

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Headless Chromium for the browser tests of the report and the web page.
browser:
	@test -x /usr/bin/chromium || sh scripts/apt-install.sh chromium

# A PostgreSQL server for the test of tuning workers sharing one study (the test starts it).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || sh scripts/apt-install.sh postgresql

# The wheel as users get it: built, installed into a fresh venv outside the checkout, used
# from an empty folder (predict, serve, the README's Python example).
wheel-check: $(VENV)/.base data
	TORCH="$(TORCH)" $(PY) scripts/wheel_check.py

test: $(VENV)/.test data lint browser postgres wheel-check
	$(PY) -m pytest

# The quick loop while editing: lint and the tests not marked slow.
check: $(VENV)/.test data lint
	$(PY) -m pytest -m "not slow" -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
