"""The README's settings table documents every setting, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from service.runtime.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def documented_settings() -> set[str]:
    return set(re.findall(r"^\| `FEDIRELAY_([A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))


def test_every_setting_is_in_the_readme_table():
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented_settings() == set()


def test_the_readme_table_names_only_real_settings():
    expected = {name.upper() for name in Settings.model_fields}
    assert documented_settings() - expected == set()


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = text[text.index("```") : text.index("```", text.index("```") + 3)]
    assert "make run" in first_block
    assert "make test" in first_block
