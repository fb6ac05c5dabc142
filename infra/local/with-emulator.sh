#!/usr/bin/env bash
# Runs a command against the local AWS: starts the emulator on a free 127.0.0.1 port, waits
# until /moto-api/ answers, exports AWS_ENDPOINT_URL and dummy credentials, runs the
# command, and always stops the emulator, whatever the command does.
#
#   infra/local/with-emulator.sh cargo test
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${SHIPLANE_PYTHON:-$here/../../.venv/bin/python}
log=${SHIPLANE_EMULATOR_LOG:-/dev/null}
portfile=$(mktemp)
rm -f "$portfile"

"$py" "$here/emulator.py" --port 0 --port-file "$portfile" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$portfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=""
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-emulator: the emulator exited before it answered (log: $log)" >&2
    exit 1
  fi
  if [ -s "$portfile" ] && "$py" - "$(cat "$portfile")" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
    port=$(cat "$portfile")
    break
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "with-emulator: the emulator did not answer within 60 s (log: $log)" >&2
  exit 1
fi

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
"$@"
