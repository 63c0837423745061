"""What the README, docs/ and docstrings name in the code exists, and they cite only the repository.

Modules move (docs/architecture.md); a path or a dotted name left behind in prose would send a
reader to nothing. Every ``core/...py`` path and every dotted name under ``core`` (a module, or a
module and the names defined in it) mentioned in the README, docs/ or the sources must resolve, and
no text cites a design document outside the repository.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = [p for folder in ("core", "triggers", "cli", "devhost", "bench", "tests") for p in sorted((ROOT / folder).rglob("*.py"))]
PATH = re.compile(r"(?<![\w.\-/])core/[\w/]+\.py\b")
DOTTED = re.compile(r"(?<![\w.\-/])core(?:\.[A-Za-z_]\w*)+")
FOREIGN = {"core.windows"}
"""Dotted text that is not Junction's code (Azure's host names: ``blob.core.windows.net``)."""
OUTSIDE = re.compile(r"\bDESIGN(?:\.md\b| \d| section)")


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        target = ROOT.joinpath(*parts[:cut])
        if target.with_suffix(".py").is_file() or (target / "__init__.py").is_file():
            value: object = importlib.import_module(module_name)
            for attribute in parts[cut:]:
                if not hasattr(value, attribute):
                    return False
                value = getattr(value, attribute)
            return True
    return False


@pytest.mark.parametrize("path", PROSE + SOURCES, ids=_id)
def test_every_core_path_named_exists(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    missing = sorted({m for m in PATH.findall(text) if not (ROOT / m).is_file()})
    assert not missing, f"{_id(path)} names {missing}, which do not exist"


@pytest.mark.parametrize("path", PROSE + SOURCES, ids=_id)
def test_every_core_name_named_exists(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    text = path.read_text(encoding="utf-8")
    names = {m for m in DOTTED.findall(text) if not any(m == f or m.startswith(f + ".") for f in FOREIGN)}
    missing = sorted(name for name in names if not _resolves(name))
    assert not missing, f"{_id(path)} names {missing}, which do not exist"


TEMPLATES = sorted((ROOT / "infra").rglob("*.bicep"))


@pytest.mark.parametrize("path", PROSE + SOURCES + TEMPLATES, ids=_id)
def test_nothing_cites_a_document_outside_the_repository(path: Path) -> None:
    """Docstrings and docs cite docs/ of this repository (docs/architecture.md above all), or nothing."""
    found = OUTSIDE.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{_id(path)} cites {found}: cite a file of docs/ instead"
