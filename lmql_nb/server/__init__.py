"""An OpenAI-compatible HTTP server over any backend that implements `TokenIdBackend`.

    python -m lmql_nb serve local:gemma-3-270m --port 8080

serves `/v1/models`, `/v1/completions`, `/v1/chat/completions`, `/tokenize`,
`/detokenize`, `/tokenizer_info` and `/health`, compatible with what vLLM's OpenAI server
accepts, so that several notebooks (or any OpenAI client) share one loaded model.
Concurrent requests reach the engine concurrently and are batched into shared forward
passes.

Modules, one job each: `app` (routes and authentication), `body` (reading bodies under
size and depth limits), `protocol` (typed requests, validated), `serving` (the serving
layer: a request in, a body or an event stream out, one path for both), `responses`
(every body and chunk), `bridge` (the model behind the API, off the event loop; chat
through `tokenization.chat`, as in process), `stops` (stop strings), `structured`
(`structured_outputs`), `run` (binding, uvicorn, shutdown), `jupyter` (a Jupyter server
extension that starts servers on demand).
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
