"""An OpenAI-compatible HTTP server over a model the in-process engine loads.

    python -m lmql_nb serve local:gemma-3-270m --port 8080

serves `/v1/models`, `/v1/completions`, `/v1/chat/completions`, `/tokenize`,
`/detokenize` and `/health`, compatible with what vLLM's OpenAI server accepts, so that
several notebooks (or any OpenAI client) share one loaded model. Concurrent requests
reach the engine concurrently and are batched into shared forward passes.

Modules, one job each: `protocol` (request validation), `bridge` (the model behind the
API), `stops` (stop strings), `responses` (response bodies), `structured`
(`structured_outputs`), `app` (routes and authentication), `run` (binding and uvicorn),
`jupyter` (a Jupyter server extension that starts servers on demand).
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
