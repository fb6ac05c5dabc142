#!/usr/bin/env bash
# A newcomer's first run, measured: `make demo` and `make build`, each in its own fresh clone
# of HEAD with nothing built (its own target/, CARGO_TARGET_DIR unset, no .venv), then
# `make demo` once more with CARGO_TARGET_DIR set to a fresh directory outside its clone;
# one after the other so that none shares the machine. Writes the section "## First run from a
# clean clone" of BENCHMARKS.md (`make bench` keeps it as written). The crates cargo
# downloads are not measured: they come from ~/.cargo's cache when present (said in the
# section). Usage: bench/first-run.sh [BENCHMARKS.md]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/BENCHMARKS.md}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
commit=$(git -C "$root" rev-parse --short HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "note: the clones are of commit $commit; uncommitted changes are not measured" >&2
fi

# measure NAME TARGET [TARGET_DIR]: seconds `make TARGET` took in a fresh clone, building
# into its own target/ or, given one, into a fresh CARGO_TARGET_DIR outside it; its log on
# failure.
measure() {
  git clone --quiet "$root" "$work/$1"
  local start=$SECONDS
  local env_target=(env -u CARGO_TARGET_DIR)
  if [ -n "${3:-}" ]; then env_target=(env CARGO_TARGET_DIR="$3"); fi
  if ! (cd "$work/$1" && "${env_target[@]}" make "$2" >"$work/$1.log" 2>&1); then
    echo "make $2 failed in a fresh clone; its log's end:" >&2
    tail -n 40 "$work/$1.log" >&2
    exit 1
  fi
  echo $((SECONDS - start))
}

minutes() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

echo "make demo in a fresh clone of $commit…" >&2
demo=$(measure demo demo)
echo "make demo: $(minutes "$demo"); make build in another fresh clone…" >&2
build=$(measure build build)
echo "make build: $(minutes "$build"); make demo with CARGO_TARGET_DIR set, in a third…" >&2
elsewhere=$(measure elsewhere demo "$work/elsewhere-target")
echo "make demo (CARGO_TARGET_DIR set): $(minutes "$elsewhere")" >&2

cores=$(nproc)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
cached=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name '*.crate' 2>/dev/null | wc -l)
verdict() { if [ "$1" -le "$2" ]; then echo "within"; else echo "**over**"; fi; }
section=$(cat <<EOF
## First run from a clean clone

Measured by \`bench/first-run.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), commit \`$commit\`: each
target in its own fresh clone, nothing built (its own \`target/\`, \`CARGO_TARGET_DIR\`
unset, no \`.venv\`; the last with \`CARGO_TARGET_DIR\` set to a fresh directory outside
it), one after the other on an otherwise idle machine ($cpu, $cores cores).
Python packages came from PyPI; the crates from \`~/.cargo\`'s cache ($cached crates there), so
a machine that downloads them takes that much longer.

| command | took | target (issue #23) | |
|---|---|---|---|
| \`make demo\` (installs the venv, builds the functions, CLI and demo in debug, runs the story) | $(minutes "$demo") | 8 min | $(verdict "$demo" 480) |
| \`make build\` (installs the venv, the six functions' release bootstraps and zips in one cargo build) | $(minutes "$build") | 15 min | $(verdict "$build" 900) |
| \`make demo\` again, with \`CARGO_TARGET_DIR\` set to a fresh directory outside the clone | $(minutes "$elsewhere") | 8 min | $(verdict "$elsewhere" 480) |
EOF
)
python3 - "$out" "$section" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2].rstrip("\n") + "\n"
heading = "## First run from a clean clone"
text = open(path).read() if __import__("os").path.exists(path) else "# Benchmarks\n"
if heading in text:
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    end = len(text) if nxt < 0 else nxt + 1
    text = text[:start] + section + ("\n" + text[end:] if nxt >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
echo "wrote the first-run section of $out" >&2
