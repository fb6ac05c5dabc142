#!/usr/bin/env bash
# Builds image-push and hello-world under cumulative release-profile variants and keeps
# each pair of binaries in target/profiles/<variant>/, so the bench can measure what each
# setting buys (size, cold start). Slow: one full release build per variant.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/profiles
mkdir -p "$out"
base=(--config 'profile.release.opt-level=3' --config 'profile.release.lto=false'
      --config 'profile.release.codegen-units=16' --config 'profile.release.strip=false'
      --config 'profile.release.panic="unwind"')
# Each variant: name|release-profile settings added to the cargo defaults above.
variants=(
  '1-cargo-default|'
  '2-strip-panic-abort|strip=true panic="abort"'
  '3-thin-lto-cg1|strip=true panic="abort" lto="thin" codegen-units=1'
  '4-opt-s|strip=true panic="abort" lto="thin" codegen-units=1 opt-level="s"'
  '5-opt-z-shipped|strip=true panic="abort" lto="thin" codegen-units=1 opt-level="z"'
)
for v in "${variants[@]}"; do
  name=${v%%|*}
  extra=()
  for setting in ${v#*|}; do
    extra+=(--config "profile.release.$setting")
  done
  if [ -x "$out/$name/image-push" ] && [ "${FORCE:-0}" != 1 ]; then echo "$name: kept"; continue; fi
  start=$(date +%s)
  cargo build --release --locked -p image-push -p hello-world "${base[@]}" "${extra[@]}"
  mkdir -p "$out/$name"
  cp target/release/image-push target/release/hello-world "$out/$name/"
  echo "$name: built in $(( $(date +%s) - start )) s" | tee "$out/$name/build-time"
done
# Leave target/release as the shipped profile builds it.
cargo build --release --locked -p image-push -p hello-world
