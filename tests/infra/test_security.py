"""The security properties of infra/ (tests/infra/checks.py), asserted on the parsed templates."""

from __future__ import annotations

import pytest

from tests.infra.bicep import load_templates
from tests.infra.checks import CHECKS, UNDEPLOYED_SETTINGS, app_junction_settings


@pytest.fixture(scope="module")
def templates():
    return load_templates()


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_security_property(templates, name):
    CHECKS[name](templates)


def test_undeployed_settings_are_still_read_by_the_app():
    # If the app stops reading one of these, drop it from the exception list.
    assert set(UNDEPLOYED_SETTINGS) <= app_junction_settings()
