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

from ..base import Registration
from .backend import OpenAIBackend, create, create_at_endpoint
from .options import OpenAIOptions
from .tokenizer import RemoteTokenizer

REGISTRATION = Registration(
    "openai/", create, OpenAIOptions,
    (("openai/<model>", "OpenAI, Azure OpenAI or an OpenAI-compatible server: options "
                        "api_key, base_url, ..."),))
#: what `endpoint=` models use (`create_at_endpoint(model_id, endpoint, options, connect)`)
ENDPOINT_CLIENT = Registration("", create_at_endpoint, OpenAIOptions, ())

__all__ = ["ENDPOINT_CLIENT", "OpenAIBackend", "OpenAIOptions", "REGISTRATION",
           "RemoteTokenizer", "create", "create_at_endpoint"]
