"""Test-wide setup: every module in ``tests/plugins`` is a pytest plugin.

Plugins own their fixtures (Redis single and cluster, provider fakes, stores, the local
server), so a new fixture module needs no edit here.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

pytest_plugins = [
    f"tests.plugins.{module.name}"
    for module in pkgutil.iter_modules([str(Path(__file__).parent / "plugins")])
]
