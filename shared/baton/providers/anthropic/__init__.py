"""The Anthropic adapter: Baton's OpenAI-shaped request to the Messages API and back.

The mapping is data (tables) plus small pure functions, so each rule is stated once and
can be read without following control flow. One module per job:

- :mod:`.messages`: system and developer messages -> the top-level ``system`` prompt,
  the rest -> alternating turns (tool results as user-role ``tool_result`` blocks);
- :mod:`.request`: the other request fields -> ``messages.create`` arguments, including
  the required ``max_tokens`` and ``reasoning_effort`` as thinking;
- :mod:`.response`: answers and stream events -> OpenAI's shapes, with the one
  stop-reason table and the usage normalisation;
- :mod:`.errors`: SDK and transport exceptions -> Baton's hierarchy, in one place;
- :mod:`.provider`: the adapter around the official SDK client.

``temperature`` and ``top_p`` are not mapped: the SDK (2.x) speaks API version
2026-10-21, which answers any sampling parameter with a 400 on every model, so they
are left out of ``supported_fields`` and the orchestrator reports them as dropped.
"""

from __future__ import annotations

from baton.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
