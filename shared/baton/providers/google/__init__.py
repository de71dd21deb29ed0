"""Google Gemini, through the maintained ``google-genai`` SDK.

``google-generativeai`` is deprecated and past its end of support; ``google-genai``
(``from google import genai``) replaces it. This package is ``baton.providers.google``,
a subpackage, so the absolute ``from google import genai`` in its modules still reaches
Google's namespace package.

The client is built once per container, pinned so that no environment variable of the
SDK can redirect it (``GOOGLE_GENAI_USE_VERTEXAI``, ``GOOGLE_GEMINI_BASE_URL``,
``GOOGLE_GENAI_API_VERSION``, ``GOOGLE_API_KEY``): Developer API, explicit key, explicit
base URL, API version ``v1beta`` (the SDK's default is ``v1``, which lags behind on
thinking levels and JSON schemas). One adapter call is one HTTP call: SDK retries are
off (``attempts=1``, which also stops its implicit reconnect on aiohttp), as are the
SDK's automatic function calling and automatic continuation (both may send follow-up
requests on their own).

One module per job, each mapping stated as data (tables) plus small pure functions:

- :mod:`.messages`: OpenAI messages -> Gemini's system instruction and ``contents``;
- :mod:`.request`: the other request options -> ``GenerateContentConfig``, including
  what differs between Gemini generations;
- :mod:`.response`: Gemini's answers and stream chunks -> OpenAI's, with the one
  finish-reason table and the usage normalisation;
- :mod:`.errors`: SDK and transport exceptions -> Baton's hierarchy, in one place;
- :mod:`.provider`: the adapter that puts them together around the SDK client.
"""

from __future__ import annotations

from baton.providers.google.provider import GoogleProvider

__all__ = ["GoogleProvider"]
