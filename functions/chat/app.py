"""The chat function: the OpenAI endpoint.

``app`` is the ASGI app Lambda Web Adapter runs behind the Function URL (``run.sh``,
streaming); ``handler`` serves the HTTP API's buffered ``POST /v2/chat`` through
Mangum, with the HTTP API's shorter deadline.
"""

from __future__ import annotations

from mangum import Mangum

from baton.api.lifecycle import init_container
from baton.api.openai_app import create_app

init_container()
app = create_app("function_url")
handler = Mangum(create_app("http_api"), lifespan="off")
