"""The client backend: OpenAI, Azure OpenAI and OpenAI-compatible servers over HTTP.

    lmql_nb.model("openai/gpt-4o-mini")                        # key from $OPENAI_API_KEY
    lmql_nb.model("openai/NAME", base_url="http://127.0.0.1:8080/v1")   # lmql_nb serve, vLLM
    lmql_nb.model("NAME", endpoint="127.0.0.1:8080")           # the same, shorter

One module per job:

- `options`: `OpenAIOptions`, what `lmql_nb.model("openai/...", **options)` accepts;
- `transport`: clients (one per event loop), retries with backoff honouring
  `Retry-After`, the bound on requests in flight, secrets that never show;
- `dialect`: the request body for OpenAI or for vLLM-style servers, constraints field by
  field (nothing is sent that the server would not enforce);
- `parsing`: responses, streams and scores into results;
- `tokenizer`: `RemoteTokenizer` over the server's /tokenize and /detokenize;
- `backend`: `OpenAIBackend`, which decides what to ask.

Importing this package imports neither `openai` nor `httpx`: they load with the first
request.
"""

from .backend import OpenAIBackend, create, create_at_endpoint
from .options import OpenAIOptions
from .tokenizer import RemoteTokenizer

__all__ = ["OpenAIBackend", "OpenAIOptions", "RemoteTokenizer", "create", "create_at_endpoint"]
