"""Lua scripts: real ``.lua`` files in ``kv/lua/``, registered once per client.

In the style of the ``limits`` library: a script is declared once, at import, with
``LuaScript("record_usage")``; its text is read from the package with
``importlib.resources`` (so a missing file fails at import, not on the first request);
and it is registered once per client with redis-py's ``register_script``, whose
``Script`` sends EVALSHA and falls back to SCRIPT LOAD + EVALSHA on NOSCRIPT (after a
failover, a restart or a ``SCRIPT FLUSH``). That works unchanged for sync and asyncio
clients, single Redis and ``RedisCluster``: on a cluster, redis-py routes EVALSHA by the
slot of its keys and loads scripts on every primary.

Every call is checked first: all its keys must share one hash slot. A single Redis runs
a cross-slot script without complaint and the bug would surface only on the cluster in
production, so the guard raises :class:`~baton.kv.exceptions.CrossSlotError` on every
backend. It costs one CRC16 per key, in C (``binascii.crc_hqx``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.resources import files
from typing import Any, TypeAlias

from redis import Redis, RedisCluster
from redis import asyncio as aioredis
from redis.commands.core import AsyncScript, Script
from redis.crc import key_slot
from redis.typing import EncodableT

from baton.kv.exceptions import CrossSlotError

SyncClient: TypeAlias = "Redis | RedisCluster"
AsyncClient: TypeAlias = "aioredis.Redis | aioredis.RedisCluster"

_LUA_DIR = files("baton.kv") / "lua"


def check_same_slot(keys: Sequence[str]) -> None:
    """Raise :class:`CrossSlotError` unless every key hashes to the same cluster slot."""
    slots = {key_slot(key.encode()) for key in keys}
    if len(slots) > 1:
        detail = ", ".join(f"{key} -> {key_slot(key.encode())}" for key in keys)
        raise CrossSlotError(f"keys of one script call span slots {sorted(slots)}: {detail}")


# Registrations live on the client itself, so they die with it. A registry keyed weakly
# by client would keep every client alive: a redis-py Script holds its client.
_REGISTRATIONS = "_baton_lua_scripts"
_lock = threading.Lock()


def _registrations(client: SyncClient | AsyncClient) -> dict[str, Any]:
    registrations: dict[str, Any] = vars(client).setdefault(_REGISTRATIONS, {})
    return registrations


class LuaScript:
    """One script of ``kv/lua/<name>.lua``, callable on any kind of client."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (_LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r})"

    def registered(self, client: SyncClient) -> Script:
        """The script registered on a sync client (registered on first use)."""
        with _lock:
            registrations = _registrations(client)
            script: Script | None = registrations.get(self.name)
            if script is None:
                script = registrations[self.name] = client.register_script(self.source)
            return script

    def registered_async(self, client: AsyncClient) -> AsyncScript:
        """The script registered on an asyncio client (registered on first use)."""
        with _lock:
            registrations = _registrations(client)
            script: AsyncScript | None = registrations.get(self.name)
            if script is None:
                script = registrations[self.name] = client.register_script(self.source)
            return script

    def run(self, client: SyncClient, keys: Sequence[str], args: Sequence[EncodableT]) -> Any:
        """Run on a sync client; the reply is the script's, as redis-py decodes it."""
        check_same_slot(keys)
        return self.registered(client)(keys=keys, args=args)

    async def run_async(
        self, client: AsyncClient, keys: Sequence[str], args: Sequence[EncodableT]
    ) -> Any:
        """Run on an asyncio client; the reply is the script's, as redis-py decodes it."""
        check_same_slot(keys)
        return await self.registered_async(client)(keys=keys, args=args)
