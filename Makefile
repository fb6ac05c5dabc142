# Shiplane. `make demo` shows the release flow against the local AWS; `make test` runs every test.
# Both install what they need: Python packages into .venv/, nothing system-wide.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR := infra/local/with-emulator.sh
export CARGO_TERM_COLOR ?= never
export SHIPLANE_PYTHON := $(CURDIR)/$(PY)

.PHONY: test lint fmt unit emulator-tests python-tests demo emulator build deploy venv clean bench bench-profiles sim

## test: formatting, clippy, every unit test, and the tests against the local AWS
test: lint python-tests emulator-tests
	@infra/test-summary.sh target/pytest.log target/cargo-test.log

## lint: fmt and clippy; template.yaml through cfn-lint, `sam validate --lint` and checkov
## (each from a project venv; checkov's suppressions carry their reasons in the template)
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
lint: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(SAM_VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template-file template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

$(SAM_VENV)/.installed: infra/lint/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(CHECKOV_VENV)/.installed: infra/lint/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

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

## demo: the whole release story end to end against the local AWS (tests/src/bin/demo.rs)
demo: venv
	cargo build --locked -p shiplane-cli -p image-push -p deployment-events -p deploy-hook -p promote -p alarm -p shiplane-e2e --bins
	$(EMULATOR) target/debug/demo

## build: release binaries as Lambda artifacts, target/lambda/<function>/bootstrap (+ .zip)
FUNCTIONS := $(notdir $(wildcard functions/*))
# Lambda artifacts link as non-PIE executables: the loader then applies no relocations at
# start (image-push has 55,000), which was most of its cold start above the floor's. The
# price is address randomisation of the executable's own image (libraries, heap and stack
# keep theirs); `make build LAMBDA_RUSTFLAGS=` builds PIEs. See BENCHMARKS.md.
LAMBDA_RUSTFLAGS ?= -C relocation-model=static
# $(call lambda_binary,package): one release binary built as the artifacts are, in target/lambda/<package>/bootstrap.
lambda_binary = cargo rustc --release --locked -p $(1) --bin $(1) -- $(LAMBDA_RUSTFLAGS) && \
	mkdir -p target/lambda/$(1) && cp target/release/$(1) target/lambda/$(1)/bootstrap
build: venv
	@for f in $(FUNCTIONS); do \
	  $(call lambda_binary,$$f) && \
	  (cd target/lambda/$$f && rm -f $$f.zip && $(CURDIR)/$(PY) -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED,compresslevel=9); i=zipfile.ZipInfo('bootstrap'); i.external_attr=0o755<<16; i.compress_type=zipfile.ZIP_DEFLATED; z.writestr(i, open('bootstrap','rb').read(), compresslevel=9); z.close()" $$f.zip) && \
	  echo "target/lambda/$$f/bootstrap ($$(du -h target/lambda/$$f/$$f.zip | cut -f1) zipped)" || exit 1; \
	done

## sim: a campaign of the deterministic simulation (sim/), SEEDS seeds from FROM; a failing
## seed prints the command that replays it
SEEDS ?= 1000
FROM ?= 0
sim:
	cargo run --release --locked -p shiplane-sim -- --seeds $(SEEDS) --from $(FROM)

## bench: measure and rewrite BENCHMARKS.md (not part of `make test`; ~10 min, plus
## bench-profiles the first time, ~35 min on 2 cores: one release build per profile variant)
bench: build bench-profiles
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/python-peer/requirements.txt
	cargo bench --locked -p shiplane --bench decision
	$(call lambda_binary,hello-world)
	cargo build --release --locked -p shiplane-e2e --bin bench
	$(EMULATOR) target/release/bench --events $${BENCH_EVENTS:-1000} --out BENCHMARKS.md

## bench-profiles: build the release-profile variants BENCHMARKS.md compares (kept once built)
bench-profiles:
	LAMBDA_RUSTFLAGS="$(LAMBDA_RUSTFLAGS)" bench/profiles.sh

## deploy: build with SAM (cargo-lambda, arm64 by default) and deploy, asking for the
## parameters the first time (they are kept in samconfig.toml)
deploy: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/lint/requirements-deploy.txt
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build --template-file template.yaml
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy --guided --capabilities CAPABILITY_IAM

clean:
	cargo clean
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV)
