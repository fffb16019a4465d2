"""Where a served model is: the `endpoint=` shorthand, its key, and the Jupyter endpoint.

    lmql_nb.model("NAME", endpoint="127.0.0.1:8080")         # `lmql_nb serve`, vLLM
    lmql_nb.model("local:gemma-3-270m", endpoint="jupyter")  # the Jupyter server extension

The client half of the Jupyter extension (`lmql_nb.server.jupyter`, which starts model
servers on demand) lives here, so that asking for a model never imports the server.
Stdlib only.
"""

from __future__ import annotations

import json
import os
from typing import Optional

#: the key `lmql_nb serve` requires and the `endpoint=` shorthand sends
API_KEY_ENV = "LMQL_NB_API_KEY"

# how a kernel finds the Jupyter server that started it (set by the extension)
URL_ENV = "LMQL_NB_JUPYTER_URL"
TOKEN_ENV = "LMQL_NB_JUPYTER_TOKEN"
TOKEN_HEADER = "X-LMQL-NB-Token"
START_TIMEOUT = 900.0  # converting a GGUF the first time takes minutes


def endpoint_url(endpoint: str) -> str:
    """The API root for an `endpoint=` value: "host:port", "http://host:port" or a URL
    with its path (e.g. ".../v1")."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValueError(f"endpoint must be 'host:port' or a URL, got {endpoint!r}")
    url = endpoint.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    scheme, _, rest = url.partition("://")
    return url if "/" in rest else f"{url}/v1"


def jupyter_connect(model_id: str, name: Optional[str] = None,
                    timeout: float = START_TIMEOUT) -> dict:
    """From a kernel: ask the Jupyter server that started it for `model_id`'s server.

    Returns {"name", "base_url", "api_key", ...}; raises RuntimeError when this process
    was not started by a Jupyter server with the extension enabled.
    """
    import urllib.error
    import urllib.request

    url, secret = os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV)
    if not url or not secret:
        raise RuntimeError("endpoint='jupyter' needs a kernel started by a Jupyter server "
                           "with the lmql_nb server extension enabled (pip install "
                           f"'lmql_nb[server]'); ${URL_ENV} is not set here")
    body = json.dumps({"model": model_id, **({"name": name} if name else {})}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        TOKEN_HEADER: secret, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[-500:]
        raise RuntimeError(f"the Jupyter server could not start a model server for "
                           f"{model_id!r}: HTTP {error.code} {detail}") from None
    except urllib.error.URLError as error:
        raise RuntimeError(f"cannot reach the Jupyter server at {url}: {error.reason}") from None
