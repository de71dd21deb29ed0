"""Entry points: the OpenAI endpoint (an ASGI app) and the HTTP API (Powertools handlers)."""
