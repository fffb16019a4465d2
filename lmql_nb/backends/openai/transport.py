"""How requests reach the server: clients, retries, the concurrency bound, secrets.

Built on the official `openai` package (imported on first use). An async client is bound
to the event loop it first ran on, so there is one per loop (asyncio's loop or trio's
run), each with its own bound on requests in flight; one sync client serves probing and
the tokenizer. Transient failures (429, 5xx, timeouts, dropped connections) are retried
with exponential backoff, honouring `Retry-After`; everything else fails at once with an
error that names the server and the model. Secrets never show: not in reprs, log lines
or error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import threading
import time
import urllib.parse
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

from ...errors import BackendError

log = logging.getLogger("lmql_nb.backends.openai")

OFFICIAL_URL = "https://api.openai.com/v1"


class Secret:
    """A value that never shows itself in a repr or a string."""

    __slots__ = ("_value",)

    def __init__(self, value: Optional[str]):
        self._value = value

    def reveal(self) -> Optional[str]:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<hidden>" if self._value else "None"

    __str__ = __repr__


class Transport:
    """The way to one server for one model: its clients, retries and secrets.

    `azure_endpoint` set means Azure OpenAI (`base_url` is then unused by the client).
    `connect_to` repoints it later (the Jupyter endpoint says where the server is only on
    first use).
    """

    def __init__(self, model: str, *, base_url: Optional[str], api_key: Optional[str],
                 azure_endpoint: Optional[str] = None, api_version: Optional[str] = None,
                 azure_deployment: Optional[str] = None, azure_ad_token: Optional[str] = None,
                 organization: Optional[str] = None, project: Optional[str] = None,
                 timeout: float = 120.0, max_retries: int = 4, retry_max_wait: float = 60.0,
                 max_concurrency: int = 8):
        self.model = model
        self.base_url = base_url
        self.api_key = Secret(api_key)
        self.azure_endpoint = azure_endpoint
        self.api_version = api_version
        self.azure_deployment = azure_deployment
        self.azure_ad_token = Secret(azure_ad_token)
        self.organization = organization
        self.project = project
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_max_wait = retry_max_wait
        self.max_concurrency = max_concurrency
        self._lock = threading.Lock()
        self._clients: "weakref.WeakKeyDictionary[Any, tuple[Any, Any]]" = \
            weakref.WeakKeyDictionary()
        self._sync: Any = None

    @property
    def azure(self) -> bool:
        return self.azure_endpoint is not None

    def connect_to(self, base_url: str, model: str, api_key: Optional[str]) -> None:
        """Point at another server (before any request was made)."""
        with self._lock:
            self.base_url, self.model, self.api_key = base_url, model, Secret(api_key)
            self._sync, self._clients = None, weakref.WeakKeyDictionary()

    @property
    def url(self) -> str:
        """Where requests go (never with credentials)."""
        if self.azure:
            return without_credentials(self.azure_endpoint) or ""
        return without_credentials(self.base_url) or OFFICIAL_URL

    @property
    def root_url(self) -> str:
        """The server root (vLLM's /tokenize lives beside /v1, not under it)."""
        url = (self.base_url or OFFICIAL_URL).rstrip("/")
        return url[:-3] if url.endswith("/v1") else url

    def redact(self, text: str) -> str:
        """`text` with the secrets in it replaced by "<hidden>" (see `redact`)."""
        return redact(text, (self.api_key.reveal(), self.azure_ad_token.reveal()))

    # clients ----------------------------------------------------------------------------

    def _client_options(self) -> dict:
        import openai

        timeout = openai.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        options: dict = {"max_retries": 0, "timeout": timeout}
        if self.organization:
            options["organization"] = self.organization
        if self.project:
            options["project"] = self.project
        if self.azure:
            options.update(azure_endpoint=self.azure_endpoint, api_version=self.api_version)
            if self.azure_deployment:
                options["azure_deployment"] = self.azure_deployment
            if self.azure_ad_token:
                options["azure_ad_token"] = self.azure_ad_token.reveal()
            if self.api_key:
                options["api_key"] = self.api_key.reveal()
        else:
            options["api_key"] = self.api_key.reveal() or "EMPTY"  # servers without keys
            options["base_url"] = self.base_url or OFFICIAL_URL
        return options

    def sync_client(self) -> Any:
        """The one blocking client (probing, the tokenizer), made on first use."""
        import openai

        with self._lock:
            if self._sync is None:
                kind = openai.AzureOpenAI if self.azure else openai.OpenAI
                self._sync = kind(**self._client_options())
            return self._sync

    def _async_client(self) -> tuple[Any, Any]:
        """This event loop's client and concurrency bound (a client is bound to its loop)."""
        import anyio

        import openai

        loop = _loop_key()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is None:
                kind = openai.AsyncAzureOpenAI if self.azure else openai.AsyncOpenAI
                entry = (kind(**self._client_options()), anyio.Semaphore(self.max_concurrency))
                self._clients[loop] = entry
            return entry

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of this loop's `max_concurrency` request slots (e.g. for a stream)."""
        _, slots = self._async_client()
        async with slots:
            yield

    # errors -----------------------------------------------------------------------------

    def describe(self, error: BaseException) -> str:
        """What went wrong, in a few words (no secrets)."""
        import openai

        if isinstance(error, openai.APIStatusError):
            message = _server_message(error)
            return f"HTTP {error.status_code}" + (f": {message}" if message else "")
        if isinstance(error, openai.APITimeoutError):
            return f"no answer within {self.timeout:g} s (timeout)"
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__ or error.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            return f"connection failed{detail}"
        return f"{type(error).__name__}: {error}"

    def failure(self, error: BaseException, attempts: int, note: str = "") -> BackendError:
        """The error a caller sees for a request that failed."""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return BackendError(self.redact(
            f"request to {self.url} (model {self.model!r}) failed{tries}: "
            f"{self.describe(error)}{note}"))

    # requests ---------------------------------------------------------------------------

    async def request(self, call: Callable[[Any], Awaitable[Any]], slot: bool = True) -> Any:
        """`call(client)` with retries on transient failures; clear errors otherwise.

        With `slot`, the call holds one of the `max_concurrency` slots of this loop.
        """
        import openai

        client, slots = self._async_client()
        attempt = 0
        while True:
            try:
                if not slot:
                    return await call(client)
                async with slots:
                    return await call(client)
            except openai.APIStatusError as error:
                if not _retryable_status(error.status_code):
                    raise self.failure(error, attempt + 1) from None
                failure: BaseException = error
            except (openai.APITimeoutError, openai.APIConnectionError) as error:
                failure = error
            if attempt >= self.max_retries:
                raise self.failure(failure, attempt + 1) from None
            delay, told = _retry_delay(failure, attempt)
            if delay > self.retry_max_wait:
                raise self.failure(failure, attempt + 1,
                                   f"; the server asked to retry after {delay:g} s, more "
                                   f"than retry_max_wait={self.retry_max_wait:g} s") from None
            log.warning("%s: %s; retrying in %.1f s%s (attempt %d of %d)", self.url,
                        self.redact(self.describe(failure)), delay,
                        " as the server asked" if told else "", attempt + 2,
                        self.max_retries + 1)
            await sleep(delay)
            attempt += 1

    async def post(self, path: str, body: dict, slot: bool = True) -> Any:
        """POST `body` (with the model) to `path` under the server root, with retries
        (holding a request slot, unless `slot` is False)."""
        return await self.request(lambda client: client.post(
            f"{self.root_url}{path}", cast_to=object, body={"model": self.model, **body}),
            slot=slot)

    def get_sync(self, path: str) -> Any:
        """GET `path` under the server root, blocking, without retries."""
        import openai

        try:
            return self.sync_client().get(f"{self.root_url}{path}", cast_to=object)
        except openai.APIError as error:
            raise self.failure(error, 1) from None

    def post_sync(self, path: str, body: dict) -> Any:
        """The same, blocking, without retries (the tokenizer's and the probe's calls)."""
        import openai

        try:
            return self.sync_client().post(f"{self.root_url}{path}", cast_to=object,
                                           body={"model": self.model, **body})
        except openai.APIError as error:
            raise self.failure(error, 1) from None


# helpers ----------------------------------------------------------------------------------

#: a secret at least this long is hidden wherever it stands as a whole token; a shorter one
#: (a test key such as "x") only where a secret is written: after "Bearer ", in a header or
#: a key=value pair, or as a URL's password. Replacing every "x" would garble the message.
WHOLE_TOKEN_SECRET = 8
#: what may stand around a secret that is a whole token (keys are letters, digits, - and _)
_KEY_CHARS = r"A-Za-z0-9_\-"
_SECRET_CONTEXT = (r"(?:bearer\s+|(?:api[-_ ]?key|authorization|token|password|secret)"
                   r"[\"']?\s*[:=]\s*[\"']?|://[^/\s:@]*:)")


def redact(text: str, secrets: "tuple[Optional[str], ...]") -> str:
    """`text` with each secret replaced by "<hidden>" where it appears as a whole token
    (not inside a longer word), and a short secret only where secrets are written."""
    import re

    for secret in secrets:
        if not secret:
            continue
        escaped = re.escape(secret)
        whole = rf"(?<![{_KEY_CHARS}]){escaped}(?![{_KEY_CHARS}])"
        if len(secret) >= WHOLE_TOKEN_SECRET:
            text = re.sub(whole, "<hidden>", text)
        else:
            text = re.sub(rf"({_SECRET_CONTEXT}){whole}", r"\1<hidden>", text,
                          flags=re.IGNORECASE)
    return text


def without_credentials(url: Optional[str]) -> Optional[str]:
    """`url` without a user:password part."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def is_official(base_url: Optional[str]) -> bool:
    """True for OpenAI's and Azure's own servers (no base URL means OpenAI's)."""
    if not base_url:
        return True
    host = urllib.parse.urlsplit(base_url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


def _loop_key() -> Any:
    """What identifies the running event loop (asyncio's loop, or trio's run)."""
    import sniffio

    library = sniffio.current_async_library()
    if library == "asyncio":
        return asyncio.get_running_loop()
    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    raise RuntimeError(f"the openai backend runs on asyncio or trio, not {library}")


async def sleep(seconds: float) -> None:
    """Sleep on asyncio or trio."""
    import anyio

    await anyio.sleep(seconds)


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_delay(error: BaseException, attempt: int) -> tuple[float, bool]:
    """How long to wait before the next attempt; and whether the server said so."""
    after = _retry_after(error)
    if after is not None:
        return after, True
    return min(8.0, 0.5 * 2 ** attempt) * (0.75 + 0.5 * random.random()), False


def _retry_after(error: BaseException) -> Optional[float]:
    """Seconds from a `Retry-After` (or `retry-after-ms`) header, if the server sent one."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _server_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return str(getattr(error, "message", "") or "")
