#!/usr/bin/env bash
# Builds image-push and hello-world under cumulative release-profile variants and keeps
# each pair of binaries in $TARGET_DIR/profiles/<variant>/, so the bench can measure what
# each setting buys (size, cold start); then the aws-lc entropy probe with and without CPU
# jitter entropy in $TARGET_DIR/entropy-probe/<mode>/. Slow: one full release build per
# variant. Kept once built; FORCE=1 rebuilds (after a change to the functions' code). The
# last variant, what ships, is `make build`'s own artifacts: `make bench` copies them.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${TARGET_DIR?run through make bench-profiles, which asks cargo where it builds}
out=$target/profiles
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
  '5-opt-z|strip=true panic="abort" lto="thin" codegen-units=1 opt-level="z"'
  '6-fat-lto|strip=true panic="abort" lto="fat" codegen-units=1 opt-level="z"'
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
  cp "$target/release/image-push" "$target/release/hello-world" "$out/$name/"
  echo "$name: built in $(( $(date +%s) - start )) s" | tee "$out/$name/build-time"
done

# aws-lc's CPU jitter entropy, on (its default) and off (.cargo/config.toml): the probe
# built both ways, each in a target directory of its own (aws-lc-sys is rebuilt for it).
for mode in jitter:0 os:1; do
  name=${mode%%:*}
  dir=$target/entropy-probe/$name
  if [ -x "$dir/entropy-probe" ] && [ "${FORCE:-0}" != 1 ]; then echo "entropy-probe $name: kept"; continue; fi
  AWS_LC_SYS_NO_JITTER_ENTROPY=${mode#*:} CARGO_TARGET_DIR=$target/entropy-probe/build-$name \
    cargo build --release --locked -p entropy-probe
  mkdir -p "$dir"
  cp "$target/entropy-probe/build-$name/release/entropy-probe" "$dir/"
done
