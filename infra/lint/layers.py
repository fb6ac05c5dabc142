#!/usr/bin/env python3
"""The drawing of Shiplane's imports, and the check that no arrow points up.

Prints, layer by layer from the bottom, each module of the `shiplane` crate
(shared/src) and the modules it names through `crate::`; exits 1 when a module
names one in its own layer or above (a back-arrow), or when the core crate
(core/Cargo.toml) depends on an AWS crate. `make lint` runs it.

    python3 infra/lint/layers.py [REPO]
"""

import re
import sys
import tomllib
from pathlib import Path

# Bottom to top. A module may name modules of lower layers only; modules sharing a layer
# are siblings that must not know each other (a store does not call an AWS adapter).
LAYERS = [
    # shiplane-core, re-exported by shiplane under these names.
    ["facts", "pipeline", "release"],
    ["settings"],
    ["sdk"],
    ["inbound", "store", "aws"],
    ["checks"],
    ["metrics"],
    ["engine"],
    ["lambda"],
]
LAYER = {m: i for i, layer in enumerate(LAYERS) for m in layer}
# What the core crate must never depend on: anything that talks to AWS or runs Lambda.
FORBIDDEN_IN_CORE = re.compile(r"^(aws|lambda|tokio|hyper)")
REFERENCE = re.compile(r"\bcrate::([a-z_]+)\b")


def code(text):
    """The text without its comments (doc comments name modules freely)."""
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def module_of(src, path):
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def arrows(src):
    """{module: {named module: first file that names it}} for every .rs under src."""
    found = {}
    for path in sorted(src.rglob("*.rs")):
        module = module_of(src, path)
        if module == "lib":
            continue
        named = found.setdefault(module, {})
        for target in REFERENCE.findall(code(path.read_text())):
            if target != module and target in LAYER:
                named.setdefault(target, path)
    return found


def check(repo):
    """(drawing lines, problems)."""
    src = repo / "shared" / "src"
    problems = []
    found = arrows(src)
    for module in found:
        if module not in LAYER:
            problems.append(
                f"shared/src/{module}: a module the layers do not place; add it to LAYERS in infra/lint/layers.py"
            )
    lines = []
    for i, layer in enumerate(LAYERS):
        for module in layer:
            named = found.get(module, {})
            lines.append(f"{i} {module:<9} → {', '.join(sorted(named)) or '-'}")
            for target, path in sorted(named.items()):
                if LAYER[target] >= LAYER[module]:
                    problems.append(
                        f"{path.relative_to(repo)}: {module} (layer {i}) names crate::{target} "
                        f"(layer {LAYER[target]}): move what it needs below {module}, or {module} above it"
                    )
    manifest = tomllib.loads((repo / "core" / "Cargo.toml").read_text())
    for dep in manifest.get("dependencies", {}):
        if FORBIDDEN_IN_CORE.match(dep):
            problems.append(
                f"core/Cargo.toml depends on {dep}: the core crate holds rules only; put I/O in shared/"
            )
    return lines, problems


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    lines, problems = check(repo)
    print("layer module    → modules it names (crate::…)")
    print("\n".join(lines))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print("no arrow from a lower layer to a higher one; core/ depends on no AWS crate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
