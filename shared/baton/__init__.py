"""Baton: an AI orchestration gateway in front of OpenAI, Anthropic and Google Gemini.

This package is the core layer shared by every Lambda function. Everything in this
folder ships to AWS, so it holds no tests, fixtures or dev tools.
"""

from __future__ import annotations

__version__ = "0.1.0"
