#!/usr/bin/env bash
# Prints one closing line with the totals of every test runner `make test` ran.
#   infra/test-summary.sh PYTEST_LOG CARGO_LOG
set -euo pipefail
py_passed=$(grep -Eo '[0-9]+ passed' "$1" | tail -1 | cut -d' ' -f1 || true)
py_failed=$(grep -Eo '[0-9]+ failed' "$1" | tail -1 | cut -d' ' -f1 || true)
read -r rs_passed rs_failed < <(awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' "$2")
passed=$(( ${py_passed:-0} + rs_passed ))
failed=$(( ${py_failed:-0} + rs_failed ))
echo "python: ${py_passed:-0} passed, ${py_failed:-0} failed; rust: $rs_passed passed, $rs_failed failed"
echo "tests: $passed passed, $failed failed"
