# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test serve worker migrate seed requirements chromium clean

run: $(VENV)/.dev  ## start PostgreSQL (embedded unless DATABASE_URL is set), migrate, seed, serve and run the worker
	$(PY) -m app dev

test: $(VENV)/.test chromium  ## the whole suite against a throwaway PostgreSQL
	CHROMIUM="$$($(MAKE) -s chromium)" $(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

$(VENV)/.dev: requirements/dev.txt $(VENV)/bin/python
	$(PIP) install --quiet --require-hashes -r requirements/dev.txt
	touch $@

$(VENV)/.test: requirements/test.txt $(VENV)/bin/python
	$(PIP) install --quiet --require-hashes -r requirements/test.txt
	touch $@ $(VENV)/.dev

# Prints the path of a Chromium for Playwright: $$CHROMIUM, else /usr/bin/chromium, else Debian's package
# installed with apt-get when running as root, else a message saying what to install.
chromium:
	@if [ -n "$$CHROMIUM" ] && [ -x "$$CHROMIUM" ]; then echo "$$CHROMIUM"; \
	elif [ -x /usr/bin/chromium ]; then echo /usr/bin/chromium; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 && echo /usr/bin/chromium; \
	else echo "Chromium is needed for the browser tests: install Debian's 'chromium' package (sudo apt-get install chromium) or set CHROMIUM=/path/to/chromium" >&2; exit 1; fi

# Recompile the hash-pinned requirement files after changing pyproject.toml (needs network access to the index).
requirements:
	$(PYTHON) -m venv .venv-tools && .venv-tools/bin/pip install --quiet uv
	for extras in "" "--extra dev" "--extra dev --extra test"; do \
	  out=requirements/app.txt; case "$$extras" in *test*) out=requirements/test.txt;; *dev*) out=requirements/dev.txt;; esac; \
	  .venv-tools/bin/uv pip compile pyproject.toml $$extras --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make requirements" -q -o $$out; \
	done

serve: $(VENV)/.dev
	$(PY) -m app serve

worker: $(VENV)/.dev
	$(PY) -m app worker

migrate: $(VENV)/.dev
	$(PY) -m app migrate

seed: $(VENV)/.dev
	$(PY) -m app seed

clean:
	rm -rf $(VENV) .venv-tools var/tmp
