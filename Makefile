# Two commands matter: `make run` and `make test` (see README). The rest support them.
PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench install lock clean

# The virtualenv is rebuilt only when the lock file changes, so re-running is fast.
$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

var:
	mkdir -p var/static

# Local development keys, made once; never overwritten (that would make every value unreadable).
var/vault-keys.json: | install var
	$(BIN)/python manage.py vault_keys init --path $@

# PORT reaches the settings too: mailed links and receipts name the port actually served.
run: install var var/vault-keys.json
	$(BIN)/python manage.py migrate --noinput
	PORT=$(PORT) $(BIN)/python manage.py seed_demo
	@echo "Serving http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	PORT=$(PORT) $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install var var/vault-keys.json
	$(BIN)/python -m bench $(BENCH_ARGS)

# Re-pin every dependency (with hashes) after editing pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --strip-extras --allow-unsafe -o requirements.lock pyproject.toml
	rm -f $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
