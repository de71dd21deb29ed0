"""Container start-up and SnapStart restore (design decision 1).

With SnapStart the init phase runs once and is snapshotted: preloading the configured
providers' SDKs then costs nothing per cold start. Network clients in the snapshot are
dead after a restore, so the after-restore hook (``snapshot_restore_py``, present in
Lambda's Python runtime) rebuilds them.
"""

from __future__ import annotations

from baton.kv.client import reset_clients
from baton.runtime import get_runtime


def init_container() -> None:
    """Build the runtime now (preloading providers under SnapStart) and hook restores."""
    get_runtime()
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:  # not on Lambda, or a runtime without SnapStart support
        return
    register_after_restore(after_restore)


def after_restore() -> None:
    """Drop every pre-snapshot connection; the next request opens fresh ones."""
    reset_clients()
    get_runtime().registry.reconnect()
