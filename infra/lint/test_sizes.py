"""infra/lint/sizes.py finds long production files and functions, skips tests, and passes the tree."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import sizes  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def write(repo, rel, text):
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def function(name, body_lines, indent=""):
    body = "".join(f"{indent}    let x{i} = {i};\n" for i in range(body_lines))
    return f"{indent}fn {name}() {{\n{body}{indent}}}\n"


def test_the_repository_keeps_to_the_limits():
    assert sizes.check(REPO) == []


def test_a_long_file_and_a_long_function_are_named(tmp_path):
    write(tmp_path, "shared/src/big.rs", "// x\n" * 601)
    write(tmp_path, "core/src/f.rs", function("short", 78) + function("long", 79, "    "))
    problems = sizes.check(tmp_path)
    assert len(problems) == 2, problems
    assert any("big.rs: 601 lines" in p for p in problems)
    assert any("fn long is 81 lines" in p for p in problems)


def test_tests_trait_declarations_and_exceptions_are_not_counted(tmp_path):
    write(tmp_path, "shared/src/a/tests.rs", "// x\n" * 900)
    write(tmp_path, "shared/src/b.rs", "fn f() {}\n#[cfg(test)]\nmod tests {\n" + function("t", 200) + "}\n")
    signature = "    fn declared(\n        &self,\n    ) -> u8;\n" + "    // doc\n" * 90 + "}\n"
    write(tmp_path, "shared/src/c.rs", "trait T {\n" + signature)
    write(tmp_path, "core/src/release/machine/apply.rs", function("apply", 300))
    assert sizes.check(tmp_path) == []
