"""The direction of use holds: library (data, features, model, acquisition) → store (db) → campaign → flows (and the
benchmarks) → CLI and web. No module imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from e2t_al.data.paths import PROJECT_ROOT

LIBRARY = ["e2t_al/data", "e2t_al/features", "e2t_al/model", "e2t_al/acquisition", "e2t_al/config.py", "e2t_al/units.py"]
LAYERS = [  # (folders, top-level modules they must not import)
    (LIBRARY, ("db", "flows", "e2t_al.campaign", "e2t_al.bench", "e2t_al.cli", "e2t_al.web")),
    (["db"], ("flows", "e2t_al.campaign", "e2t_al.bench", "e2t_al.cli", "e2t_al.web")),
    (["e2t_al/campaign"], ("flows", "e2t_al.bench", "e2t_al.cli", "e2t_al.web")),
    (["flows", "e2t_al/bench"], ("e2t_al.cli", "e2t_al.web")),
]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folders, forbidden", LAYERS, ids=[", ".join(f) for f, _ in LAYERS])
def test_no_import_from_a_layer_above(folders, forbidden):
    files = [p for f in folders for p in ((PROJECT_ROOT / f).rglob("*.py") if (PROJECT_ROOT / f).is_dir() else [PROJECT_ROOT / f])]
    assert files
    wrong = sorted(f"{path.relative_to(PROJECT_ROOT)} imports {name}" for path in files for name in imported_modules(path)
                   if any(name == top or name.startswith(top + ".") for top in forbidden))
    assert not wrong, wrong
