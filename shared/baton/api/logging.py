"""The one Powertools Logger of the functions (JSON, correlation id, no payloads)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="baton")
