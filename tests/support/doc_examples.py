"""The fenced examples of the README and docs/, for the tests that run them.

Tests take the text of an example from the document itself (never a copy), so an example that
is edited is run as edited. Every ``json`` and ``sh`` block must be run by some test: the
registry ``RUN_BY`` in ``tests/unit/test_readme_examples.py`` names the test for each, and an
example without one (or a registry entry without an example) fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[A-Za-z]*)[ \t]*$")


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    lang: str
    text: str

    @property
    def key(self) -> str:
        """``document: first line with a letter or digit``: how the registry names a block (stable
        while lines move)."""
        first = next((line.strip() for line in self.text.splitlines() if any(c.isalnum() for c in line)), "")
        return f"{self.document}: {first}"


def blocks(document: str | None = None) -> list[Block]:
    """The fenced blocks of one document, or of all of them, in order."""
    found: list[Block] = []
    for name in (document,) if document else DOCUMENTS:
        lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            opening = _FENCE.match(lines[index])
            if opening is None:
                index += 1
                continue
            indent = len(opening["indent"])
            body: list[str] = []
            end = index + 1
            while end < len(lines) and lines[end].strip() != "```":
                body.append(lines[end][indent:] if lines[end][:indent].strip() == "" else lines[end])
                end += 1
            found.append(Block(name, index + 1, opening["lang"], "\n".join(body) + "\n"))
            index = end + 1
    return found


def block(key: str) -> Block:
    """The one block whose ``key`` starts with ``key``."""
    matches = [b for b in blocks() if b.key.startswith(key)]
    assert len(matches) == 1, f"{len(matches)} examples match {key!r}"
    return matches[0]
