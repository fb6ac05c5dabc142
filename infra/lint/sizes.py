#!/usr/bin/env python3
"""Short files and short functions in Shiplane's production code.

Production code is every .rs file under core/src, shared/src, cli/src and
functions/*/src, but test code: files under a `tests/` directory, files named
`tests.rs`, the test-only fakes and contract suite, and the part of a file from its
`#[cfg(test)]` module on. A file may hold at most MAX_FILE lines of production code and
a function at most MAX_FN lines (from its `fn` line to its closing brace, as rustfmt lays
them out), except where EXCEPTIONS names it with the reason. `make lint` runs it.

    python3 infra/lint/sizes.py [REPO]
"""

import re
import sys
from pathlib import Path

MAX_FILE = 600
MAX_FN = 80
ROOTS = ["core/src", "shared/src", "cli/src", "functions"]
# Test support compiled only for tests (`#[cfg(any(test, feature = "testing"))]`).
TEST_ONLY = {"shared/src/aws/fake.rs", "shared/src/store/contract.rs", "shared/src/engine/testing.rs"}
# "path" or "path::function" → why it may be longer. Keep it short and true.
EXCEPTIONS = {
    "core/src/release/machine/apply.rs::apply": "the stage table: one arm per (state, event) pair, each arm a line or a named helper, read as a table",
}
FN = re.compile(r"^(\s*)(?:pub(?:\([a-z]+\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([a-z_0-9]+)")
TEST_START = re.compile(r"^#\[cfg\(test\)\]")


def production_files(repo):
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.rs")):
            rel = path.relative_to(repo).as_posix()
            if "/tests/" in rel or rel.endswith("/tests.rs") or rel in TEST_ONLY:
                continue
            if root == "functions" and "/src/" not in rel:
                continue
            yield rel, path


def production_lines(text):
    """The lines before the file's first top-level `#[cfg(test)]`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if TEST_START.match(line):
            return lines[:i]
    return lines


def declaration_only(lines, start):
    """Whether the signature starting at `start` ends in `;` (a trait method without a
    body) before any body opens."""
    for line in lines[start:]:
        text = line.split("//", 1)[0].rstrip()
        if text.endswith(";"):
            return True
        if text.endswith("{"):
            return False
    return True


def long_functions(lines):
    """(name, first line number, length) of every function longer than MAX_FN."""
    found = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or declaration_only(lines, i):
            continue
        indent, name = m.group(1), m.group(2)
        for j in range(i + 1, len(lines)):
            if lines[j] == indent + "}":
                if j - i + 1 > MAX_FN:
                    found.append((name, i + 1, j - i + 1))
                break
    return found


def check(repo):
    problems = []
    for rel, path in production_files(repo):
        lines = production_lines(path.read_text())
        if len(lines) > MAX_FILE and rel not in EXCEPTIONS:
            problems.append(
                f"{rel}: {len(lines)} lines of production code (at most {MAX_FILE}): split it by concept"
            )
        for name, line, length in long_functions(lines):
            if f"{rel}::{name}" not in EXCEPTIONS:
                problems.append(
                    f"{rel}:{line}: fn {name} is {length} lines (at most {MAX_FN}): give its parts names"
                )
    return problems


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(repo)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"production files at most {MAX_FILE} lines, functions at most {MAX_FN}; "
        f"{len(EXCEPTIONS)} named exceptions (infra/lint/sizes.py says why)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
