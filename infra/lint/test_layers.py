"""infra/lint/layers.py finds back-arrows and an AWS crate in the core, and passes the tree."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import layers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def tree(tmp_path, files, core_deps=""):
    for name, text in files.items():
        path = tmp_path / "shared" / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "Cargo.toml").write_text(f'[package]\nname = "c"\n[dependencies]\n{core_deps}')
    return tmp_path


def test_the_repository_has_no_back_arrow():
    lines, problems = layers.check(REPO)
    assert problems == []
    assert any(line.split()[1] == "engine" for line in lines)


def test_a_sibling_or_higher_module_named_is_a_back_arrow(tmp_path):
    repo = tree(
        tmp_path,
        {
            "store/dynamodb.rs": "use crate::aws::OnFirstUse;\nuse crate::release::Lane;\n",
            "aws/fake.rs": "pub type D = crate::engine::Deps;\n",
            "engine/mod.rs": "use crate::store::Store;\n",
        },
    )
    _, problems = layers.check(repo)
    assert len(problems) == 2, problems
    assert any("store (layer 3) names crate::aws (layer 3)" in p for p in problems)
    assert any("aws (layer 3) names crate::engine" in p for p in problems)


def test_comments_do_not_count_and_an_unplaced_module_is_named(tmp_path):
    repo = tree(
        tmp_path,
        {
            "store/mod.rs": "/// See [`crate::engine`].\n// crate::aws too\nuse crate::sdk::X;\n",
            "newthing.rs": "use crate::release::Lane;\n",
        },
    )
    _, problems = layers.check(repo)
    assert len(problems) == 1 and "newthing" in problems[0], problems


def test_an_aws_crate_in_the_core_is_refused(tmp_path):
    repo = tree(tmp_path, {"sdk.rs": ""}, core_deps='aws-sdk-ecs = "1"\nserde = "1"\n')
    _, problems = layers.check(repo)
    assert len(problems) == 1 and "aws-sdk-ecs" in problems[0], problems
