# Shiplane. `make demo` shows the release flow against the local AWS; `make test` runs every test.
# Both install what they need: Python packages into .venv/, nothing system-wide.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR := infra/local/with-emulator.sh
export CARGO_TERM_COLOR ?= never
export SHIPLANE_PYTHON := $(CURDIR)/$(PY)

.PHONY: test lint fmt unit emulator-tests python-tests demo emulator build venv clean

## test: formatting, clippy, every unit test, and the tests against the local AWS
test: lint python-tests emulator-tests
	@infra/test-summary.sh target/pytest.log target/cargo-test.log

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

## unit: the tests that need no emulator
unit:
	cargo test --workspace --locked --lib --bins

python-tests: venv
	@mkdir -p target
	set -o pipefail; $(PY) -m pytest -q infra/local/test_shiplane_moto.py infra/test_template.py 2>&1 | tee target/pytest.log

## emulator-tests: every Rust test (unit and integration) with the emulator running
emulator-tests: venv
	@mkdir -p target
	set -o pipefail; $(EMULATOR) cargo test --workspace --locked --all-targets 2>&1 | tee target/cargo-test.log

venv: $(VENV)/.installed

$(VENV)/.installed: infra/local/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/local/requirements.txt
	touch $@

## emulator: the local AWS in the foreground on port 4566, for manual use
emulator: venv
	$(PY) infra/local/emulator.py --port $${PORT:-4566}

## demo: the release flow as far as it is built, end to end against the local AWS
demo: venv
	cargo build --locked -p shiplane-cli -p image-push -p deployment-events -p shiplane-e2e --bins
	$(EMULATOR) infra/demo.sh

build:
	cargo build --release --locked --workspace

clean:
	cargo clean
	rm -rf $(VENV)
