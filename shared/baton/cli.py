"""The ``baton`` command: ``serve``, ``keys``, ``invoke`` and ``batch``.

Each subcommand lives in the module that owns its job and registers itself through a
``register(subparsers)`` function; this file only wires them together, importing each
lazily so ``baton keys`` does not pay for the web server's imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> module that defines register(subparsers)
_SUBCOMMANDS = {
    "serve": "baton.local.server",
    "keys": "baton.keys_cli",
    "invoke": "baton.local.invoke",
    "batch": "baton.local.batch_client",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or only ``only`` (so only its module loads)."""
    parser = argparse.ArgumentParser(prog="baton", description="Baton AI gateway tools")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, module_name in _SUBCOMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; each subcommand sets ``func`` returning an exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    chosen = arguments[0] if arguments and arguments[0] in _SUBCOMMANDS else None
    args = build_parser(chosen).parse_args(arguments)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
