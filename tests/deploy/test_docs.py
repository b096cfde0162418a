"""docs/deploy.md's settings tables list exactly the settings the code reads, with their
defaults; the README points to the page."""

import re

import pytest
from pydantic_settings import BaseSettings

from deployfiles import REPO
from envnames import settings_names
from phantoscope.config import OperatorSettings, ServerSettings

DOC = REPO / "docs" / "deploy.md"


def _shown(value: object) -> str:
    """A default as the tables write it."""
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _tables() -> list[dict[str, str]]:
    """Each `| variable | default | meaning |` table of the page: variable -> default."""
    tables: list[dict[str, str]] = []
    for line in DOC.read_text().splitlines():
        if line.startswith("| variable | default |"):
            tables.append({})
        elif tables and (row := re.match(r"\| `([A-Z0-9_]+)` \| ([^|]+) \|", line)):
            tables[-1][row[1]] = row[2].strip()
    return tables


@pytest.mark.parametrize("index, settings", [(0, ServerSettings), (1, OperatorSettings)])
def test_settings_table_matches_the_code(index: int, settings: type[BaseSettings]):
    expected = {env: _shown(settings.model_fields[field].default)
                for env, field in settings_names(settings).items()}
    assert _tables()[index] == expected


def test_readme_links_the_deployment_guide():
    assert "docs/deploy.md" in (REPO / "README.md").read_text()
