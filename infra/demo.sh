#!/usr/bin/env bash
# The Shiplane demo, run by `make demo` under infra/local/with-emulator.sh (so the local AWS
# is up and AWS_ENDPOINT_URL points at it). Grows with each capability; exits non-zero if
# any step does not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/debug/shiplane
export SHIPLANE_TABLE=shiplane-demo SHIPLANE_ACTOR=demo

step() { printf '\n\033[1m▶ %s\033[0m\n' "$*"; }

step "Local AWS is up at $AWS_ENDPOINT_URL"
step "Create the Shiplane table (template.yaml does this in a real account)"
"$bin" table create

step "Validate and apply the pipeline file"
"$bin" config validate infra/pipeline.example.toml
"$bin" config apply infra/pipeline.example.toml

step "A file with mistakes is refused, every problem listed, nothing stored"
bad=$(mktemp)
sed -e 's/bake = "10m"/bake = "10 minutes"/' -e 's/kind = "rolling"/kind = "rollin"/' infra/pipeline.example.toml >"$bad"
if "$bin" config apply "$bad"; then echo "demo: the bad file was accepted" >&2; exit 1; fi
rm -f "$bad"

step "Status of every service and environment"
"$bin" status

step "Done"
