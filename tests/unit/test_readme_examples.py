"""The scenario and step examples in the README are valid, so the documentation stays true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core import schemas
from core.engine import validate_process

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
BLOCKS = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", README, re.DOTALL)]
INLINE_STEPS = [json.loads(text) for text in re.findall(r"`(\{\"type\": \"[a-zA-Z]+\".*?\})`", README)]
ALLOWED = ("erp.example.com",)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3 and len(INLINE_STEPS) >= 5


def _after_earlier_steps(step: dict) -> dict:
    """Single-step examples refer to steps called order and erp; define those first."""
    earlier = [{"type": "transform", "id": name, "expression": "a"} for name in ("order", "erp") if step.get("id") != name]
    return {"steps": [*earlier, step]}


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.get("name") or b.get("type"))
def test_json_examples_validate(block: dict) -> None:
    if "process" in block:
        schemas.validate(block, schemas.SCENARIO, "scenario")
        validate_process(block["process"], ALLOWED)
    else:
        validate_process(_after_earlier_steps(block), ALLOWED)


@pytest.mark.parametrize("step", INLINE_STEPS, ids=lambda s: s["type"])
def test_inline_step_examples_validate(step: dict) -> None:
    validate_process(_after_earlier_steps(step), ALLOWED)
