"""docs/configuration.md documents every setting the service reads, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from todo_api.settings import Settings

CONFIGURATION = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def documented_settings() -> set[str]:
    """The `TODO_…` names in the first column of the table's rows."""
    names: set[str] = set()
    for line in CONFIGURATION.read_text().splitlines():
        if line.startswith("| `TODO_"):
            first_column = line.split("|")[1]
            names.update(re.findall(r"`(TODO_[A-Z0-9_]+)`", first_column))
    return names


def test_every_setting_is_in_the_configuration_table_and_nothing_else() -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    read = {f"{prefix}{name}".upper() for name in Settings.model_fields}
    assert prefix == "TODO_"
    assert len(read) > 20  # the model was read, so an empty difference means something
    documented = documented_settings()
    assert sorted(read - documented) == [], "settings missing from docs/configuration.md"
    assert sorted(documented - read) == [], "docs/configuration.md names settings the service does not read"
