"""The options of `openai/` models and of models at an `endpoint=`, declared once."""

from __future__ import annotations

import dataclasses
from typing import Optional

from ...core.validation import Options, option

SCORING_MODES = ("exact", "first-token-approximation")


@dataclasses.dataclass(frozen=True)
class OpenAIOptions(Options):
    """What `lmql_nb.model("openai/...", **options)` accepts (README's table is made from
    this declaration)."""

    api_key: Optional[str] = option(
        None, "the key (default `$OPENAI_API_KEY`; Azure: `$AZURE_OPENAI_API_KEY`); never "
        "shown in reprs, logs or errors", "str", optional=True, allow_empty=True, secret=True)
    base_url: Optional[str] = option(
        None, "API root of an OpenAI-compatible server, e.g. \"http://127.0.0.1:8080/v1\" "
        "(default `$OPENAI_BASE_URL`, else OpenAI's)", "str", optional=True, allow_empty=True)
    organization: Optional[str] = option(None, "OpenAI account option", "str", optional=True)
    project: Optional[str] = option(None, "OpenAI account option", "str", optional=True)
    azure_endpoint: Optional[str] = option(
        None, "selects Azure OpenAI (default `$AZURE_OPENAI_ENDPOINT`); the model name is "
        "the deployment", "str", optional=True, allow_empty=True)
    api_version: Optional[str] = option(None, "Azure OpenAI's API version (default "
                                        "`$OPENAI_API_VERSION`)", "str", optional=True)
    azure_deployment: Optional[str] = option(None, "Azure deployment, if not the model "
                                             "name", "str", optional=True)
    azure_ad_token: Optional[str] = option(None, "Azure AD token (never shown)", "str",
                                           optional=True, secret=True)
    chat: Optional[bool] = option(
        None, "`/v1/chat/completions` (True) or `/v1/completions` (False); default: chat "
        "for OpenAI's and Azure's chat models, completions for every other server", "bool",
        optional=True)
    chat_template: Optional[str] = option(
        None, "a Jinja chat template (or the path of a file holding one) sent with each "
        "chat request, for a model that has none of its own (vLLM takes it from requests "
        "when started with `--trust-request-chat-template`)", "str", optional=True)
    stop: Optional[tuple[str, ...]] = option(
        None, "stop strings for every call (per call: `stops_before=` / `stops_at=`)",
        "strings", optional=True)
    scoring: str = option("exact", "\"first-token-approximation\" opts into a labelled "
                          "approximation where exact scoring is impossible", "choice",
                          choices=SCORING_MODES)
    timeout: float = option(120.0, "seconds a request may take", "number", minimum=1e-3,
                            unit="of seconds")
    max_retries: int = option(4, "retries after a 429, 5xx, timeout or dropped connection, "
                              "with exponential backoff", "int", minimum=0)
    retry_max_wait: float = option(60.0, "the longest `Retry-After` honoured; longer means "
                                   "fail now", "number", minimum=0, unit="of seconds")
    max_concurrency: int = option(8, "requests in flight at once per event loop", "int",
                                  minimum=1)
    batch_rows: int = option(8, "rows of concurrent `score` calls (and of `score_many`) "
                             "sent in one /v1/completions request when requests wait for "
                             "a slot", "int", minimum=1)
