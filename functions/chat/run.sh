#!/bin/bash
# Starts the chat ASGI app for AWS Lambda Web Adapter (the function's handler; the
# adapter's /opt/bootstrap wrapper runs it). The adapter forwards Function URL requests
# to 127.0.0.1:$AWS_LWA_PORT and streams the responses back (AWS_LWA_INVOKE_MODE).
# uvicorn ships in this function's own package (requirements.txt); the core package
# comes from the layer at /opt/python, which a plain `python` does not search.
export PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python${PYTHONPATH:+:${PYTHONPATH}}"
exec python3 -m uvicorn app:app \
  --app-dir "${LAMBDA_TASK_ROOT}" \
  --host 127.0.0.1 \
  --port "${AWS_LWA_PORT:-8080}" \
  --no-access-log
