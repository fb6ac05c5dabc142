# Shiplane. `make demo` shows the release flow against the local AWS; `make test` runs every test.
# Both install what they need: Python packages into .venv/; `make test` also Debian's chromium
# (as root, when it is missing) for the dashboard's browser test.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
EMULATOR := infra/local/with-emulator.sh
export CARGO_TERM_COLOR ?= never
export SHIPLANE_PYTHON := $(CURDIR)/$(PY)
# Where cargo builds: target/, or CARGO_TARGET_DIR, or a cargo config's build.target-dir.
# Asked of cargo (once, when a target first needs it), so every target finds what it built.
TARGET_DIR = $(eval TARGET_DIR := $(shell cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'))$(if $(TARGET_DIR),$(TARGET_DIR),$(error cannot ask cargo where it builds: run `cargo metadata --no-deps` to see why))

.PHONY: test browser lint fmt unit emulator-tests python-tests demo emulator build lambda-binaries check-arch deploy venv clean bench bench-profiles first-run sim fuzz

## test: formatting, clippy, every unit test, and the tests against the local AWS (the
## dashboard's in a headless chromium: `browser`)
test: browser lint python-tests emulator-tests
	@infra/test-summary.sh $(TARGET_DIR)/pytest.log $(TARGET_DIR)/cargo-test.log

## lint: fmt and clippy; the imports' layers (infra/lint/layers.py draws them); short files
## and functions (infra/lint/sizes.py); template.yaml
## through cfn-lint, `sam validate --lint` and checkov (each from a project venv; checkov's
## suppressions carry their reasons in the template)
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
lint: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	python3 infra/lint/layers.py
	python3 infra/lint/sizes.py
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

## browser: Debian's chromium for the dashboard's browser test (tests/tests/dashboard.rs):
## installed when missing and run as root (CI), else the command to run; SHIPLANE_CHROMIUM
## names another Chromium binary instead
browser:
	@if [ -n "$${SHIPLANE_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the dashboard's browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
	  echo "the dashboard's browser test needs chromium, and installing it needs root: run \`sudo apt-get install --no-install-recommends chromium\` (Debian), or set SHIPLANE_CHROMIUM to a Chromium binary" >&2; \
	  exit 1; \
	fi

python-tests: venv
	@mkdir -p $(TARGET_DIR)
	set -o pipefail; $(PY) -m pytest -q infra/local/test_shiplane_moto.py infra/test_template.py infra/lint/test_layers.py infra/lint/test_sizes.py 2>&1 | tee $(TARGET_DIR)/pytest.log

## emulator-tests: every Rust test (unit and integration) with the emulator running
emulator-tests: venv browser
	@mkdir -p $(TARGET_DIR)
	set -o pipefail; $(EMULATOR) cargo test --workspace --locked --all-targets 2>&1 | tee $(TARGET_DIR)/cargo-test.log

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
	$(EMULATOR) $(TARGET_DIR)/debug/demo

## build: release binaries as Lambda artifacts, $(TARGET_DIR)/lambda/<function>/bootstrap (+ .zip)
FUNCTIONS := $(notdir $(wildcard functions/*))
# Lambda artifacts link as non-PIE executables: the loader then applies no relocations at
# start (image-push has 55,000), which was most of its cold start above the floor's. The
# price is address randomisation of the executable's own image (libraries, heap and stack
# keep theirs); `make build LAMBDA_RUSTFLAGS=` builds PIEs. See BENCHMARKS.md.
LAMBDA_RUSTFLAGS ?= -C relocation-model=static
# The Rust target the artifacts are for: this machine's by default; template.yaml's
# Architectures must match it (`make deploy` checks).
LAMBDA_TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
LAMBDA_DIR = $(TARGET_DIR)/lambda
# $(call lambda_build,packages): release binaries of the packages in ONE cargo invocation, so
# the crates they share compile once. The flags go to the target's rustflags (an explicit
# --target keeps them off build scripts and proc macros, which cannot be non-PIE), and a
# RUSTFLAGS in the environment would replace them, so it is cleared.
lambda_build = env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_$(shell echo '$(LAMBDA_TARGET)' | tr 'a-z.-' 'A-Z__')_RUSTFLAGS='$(LAMBDA_RUSTFLAGS)' \
	cargo build --release --locked --target $(LAMBDA_TARGET) $(addprefix -p ,$(1))
# Where lambda_build puts a binary.
lambda_release = $(TARGET_DIR)/$(LAMBDA_TARGET)/release

## lambda-binaries: the functions' bootstraps, without zips (what `sam build` copies)
lambda-binaries:
	$(call lambda_build,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do \
	  mkdir -p "$(LAMBDA_DIR)/$$f" && cp "$(lambda_release)/$$f" "$(LAMBDA_DIR)/$$f/bootstrap" || exit 1; \
	done

build: venv lambda-binaries
	@for f in $(FUNCTIONS); do \
	  (cd "$(LAMBDA_DIR)/$$f" && rm -f $$f.zip && $(CURDIR)/$(PY) -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED,compresslevel=9); i=zipfile.ZipInfo('bootstrap'); i.external_attr=0o755<<16; i.compress_type=zipfile.ZIP_DEFLATED; z.writestr(i, open('bootstrap','rb').read(), compresslevel=9); z.close()" $$f.zip) && \
	  echo "$(LAMBDA_DIR)/$$f/bootstrap ($$(du -h "$(LAMBDA_DIR)/$$f/$$f.zip" | cut -f1) zipped)" || exit 1; \
	done

# `sam build` (template.yaml: `BuildMethod: makefile`, run in the source by --build-in-source)
# calls build-<LogicalId> once per function with ARTIFACTS_DIR: each copies the bootstrap
# `make build` made, so what is deployed is what is built and measured.
SAM_FUNCTIONS := ImagePushFunction:image-push DeploymentEventsFunction:deployment-events \
  PromoteFunction:promote AlarmFunction:alarm DeployHookFunction:deploy-hook ReconcileFunction:reconcile
$(foreach f,$(SAM_FUNCTIONS),$(eval build-$(word 1,$(subst :, ,$(f))): LAMBDA_FUNCTION = $(word 2,$(subst :, ,$(f)))))
$(addprefix build-,$(foreach f,$(SAM_FUNCTIONS),$(word 1,$(subst :, ,$(f))))): check-arch lambda-binaries
	@test -n "$(ARTIFACTS_DIR)" || { echo "build-$(LAMBDA_FUNCTION) is for sam build, which sets ARTIFACTS_DIR" >&2; exit 2; }
	cp "$(LAMBDA_DIR)/$(LAMBDA_FUNCTION)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"

## sim: a campaign of the deterministic simulation (sim/), SEEDS seeds from FROM; a failing
## seed prints the command that replays it
SEEDS ?= 1000
FROM ?= 0
sim:
	cargo run --release --locked -p shiplane-sim -- --seeds $(SEEDS) --from $(FROM)

## fuzz: every function's fuzz campaign (tests/src/fuzz.rs), longer than `make test`'s
## bounded one: FUZZ_SEEDS seeds (from..to) of FUZZ_CASES cases each; a failing case prints
## the command that replays it
FUZZ_SEEDS ?= 0..2000
FUZZ_CASES ?= 40
fuzz:
	SHIPLANE_FUZZ_SEEDS=$(FUZZ_SEEDS) SHIPLANE_FUZZ_CASES=$(FUZZ_CASES) \
	  cargo test --locked $(addprefix -p ,$(FUNCTIONS)) --bins fuzz_campaign -- --nocapture

## bench: measure and rewrite BENCHMARKS.md (not part of `make test`; ~10 min, plus
## bench-profiles the first time, ~35 min on 2 cores: one release build per profile variant;
## `make bench PROFILES=0` builds none and keeps the variants' table the last run recorded)
PROFILES ?= 1
bench: build $(if $(filter 0,$(PROFILES)),,bench-profiles)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/python-peer/requirements.txt
	cargo bench --locked -p shiplane --bench decision
	$(call lambda_build,hello-world)
	mkdir -p $(LAMBDA_DIR)/hello-world && cp $(lambda_release)/hello-world $(LAMBDA_DIR)/hello-world/bootstrap
	@# The last profile variant is what ships: the artifacts `make build` made, the floor built with them.
	mkdir -p $(TARGET_DIR)/profiles/7-non-pie-shipped
	cp $(LAMBDA_DIR)/image-push/bootstrap $(TARGET_DIR)/profiles/7-non-pie-shipped/image-push
	cp $(LAMBDA_DIR)/hello-world/bootstrap $(TARGET_DIR)/profiles/7-non-pie-shipped/hello-world
	cargo build --release --locked -p shiplane-e2e --bin bench
	$(EMULATOR) $(TARGET_DIR)/release/bench --events $${BENCH_EVENTS:-1000} --lambda-dir $(LAMBDA_DIR) --out BENCHMARKS.md

## first-run: time `make demo` and `make build` each in a fresh clone of HEAD, built from
## nothing, and `make demo` with CARGO_TARGET_DIR set (~15 min on 2 cores), into
## BENCHMARKS.md's "First run from a clean clone"
first-run:
	bench/first-run.sh

## bench-profiles: build the release-profile variants BENCHMARKS.md compares (kept once built)
bench-profiles:
	TARGET_DIR="$(TARGET_DIR)" bench/profiles.sh

## check-arch: the artifacts' Rust target (LAMBDA_TARGET) runs on template.yaml's
## Architectures; `make deploy` and `sam build` (its build-* targets) stop otherwise
TEMPLATE_ARCH = $(shell sed -n 's/^ *Architectures: *\[ *\([a-z0-9_]*\) *\]/\1/p' template.yaml | head -n1)
check-arch:
	@arch=$$(echo '$(TEMPLATE_ARCH)' | sed 's/^arm64$$/aarch64/'); case '$(LAMBDA_TARGET)' in "$$arch"-*) ;; *) \
	  echo "template.yaml deploys $(TEMPLATE_ARCH) but LAMBDA_TARGET is $(LAMBDA_TARGET): run make deploy LAMBDA_TARGET=$$arch-unknown-linux-gnu (rustup target add $$arch-unknown-linux-gnu, and a linker for it), or set Architectures in template.yaml's Globals to match" >&2; exit 2;; esac

## deploy: `sam build` (each function's bootstrap from `make build`'s one cargo build, for
## template.yaml's Architectures) and `sam deploy`, asking for the parameters the first time
## (kept in samconfig.toml). arm64 (the template's default) from an x86_64 machine:
## `rustup target add aarch64-unknown-linux-gnu`, a linker for it, and
## `make deploy LAMBDA_TARGET=aarch64-unknown-linux-gnu`; or set the template to x86_64.
deploy: $(SAM_VENV)/.installed check-arch
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build --build-in-source --template-file template.yaml
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy --guided --capabilities CAPABILITY_IAM

clean:
	cargo clean
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV)
