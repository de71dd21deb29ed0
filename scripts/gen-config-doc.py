"""Writes docs/configuration.md from ``baton.config.Settings``: the one list of every
setting, its variable, default and meaning, so the docs cannot drift from the code.
``tests/unit/test_config.py`` fails when the file is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import AliasChoices

from baton.config import Settings

OUT = Path("docs/configuration.md")

HEADER = """# Configuration

Every setting Baton reads, generated from `shared/baton/config.py` by
`scripts/gen-config-doc.py` (do not edit by hand). Precedence: explicit argument >
environment variable > the TOML file named by `BATON_CONFIG_FILE` (keys are the
setting names in the first column) > default.

| setting | environment variable | default | meaning |
| --- | --- | --- | --- |
"""


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            env = " or ".join(f"`{choice}`" for choice in alias.choices)
        else:
            env = f"`BATON_{name.upper()}`"
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {env} | {shown} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
