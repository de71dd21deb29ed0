"""Orchestration: the request path (router, retry, fallback, observability, orchestrator)."""
