"""`TokenView`: generated tokens coloured by the model's confidence, top-k on hover."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import traitlets

from ...core import aio
from ...core.results import Generation, TokenInfo
from . import static
from .base import LmqlWidget
from .branching import BRANCH_COLUMNS, Branch, Rows

STREAM_INTERVAL = 0.1  # seconds between two updates of a streaming branch

# "logprob" is an older name of "prob": both colour by the log-probability scale
COLOR_METRICS = ("prob", "logprob", "entropy", "rank")
STATUSES = ("loading", "generating", "done", "interrupted")
PROMPT_TAIL = 60  # characters of the prompt shown (in grey) before each completion

#: the per-token columns (read by js/src/tokens.js), shared by every view of tokens
TOKEN_COLUMNS = {
    "text": "str", "token_id": "i4", "logprob": "f8", "constrained_logprob": "f8",
    "rank": "i4", "entropy": "f8",
    "alt_count": "i4", "alt_text": "str", "alt_token_id": "i4", "alt_logprob": "f8",
    "alt_blocked": "u1",
    "allowed_count": "i4", "allowed_text": "str", "allowed_token_id": "i4",
    "allowed_logprob": "f8",
}
COLUMNS = {**TOKEN_COLUMNS, "seq_length": "i4"}


def _nan(x: Optional[float]) -> float:
    return math.nan if x is None else float(x)


def shown_logprob(token: TokenInfo) -> float:
    """The log-probability a token is coloured by: among the allowed tokens under a
    constraint, else the model's own."""
    constrained = getattr(token, "constrained_logprob", None)
    return token.logprob if constrained is None else constrained


def token_columns(tokens: Sequence[TokenInfo]) -> dict[str, Any]:
    """The `TOKEN_COLUMNS` of `tokens`: what every view of tokens draws and hovers."""
    alternatives = [a for t in tokens for a in t.top]
    allowed = [a for t in tokens for a in getattr(t, "allowed", ())]
    return {
        "text": [t.text for t in tokens],
        "token_id": np.array([t.token_id for t in tokens], dtype="<i4"),
        "logprob": np.array([t.logprob for t in tokens], dtype="<f8"),
        "constrained_logprob": np.array([_nan(getattr(t, "constrained_logprob", None))
                                         for t in tokens], dtype="<f8"),
        "rank": np.array([t.rank or 0 for t in tokens], dtype="<i4"),
        "entropy": np.array([_nan(t.entropy) for t in tokens], dtype="<f8"),
        "alt_count": np.array([len(t.top) for t in tokens], dtype="<i4"),
        "alt_text": [a.text for a in alternatives],
        "alt_token_id": np.array([a.token_id for a in alternatives], dtype="<i4"),
        "alt_logprob": np.array([a.logprob for a in alternatives], dtype="<f8"),
        # set by constrained decoding: the model proposed it, the constraint refused it
        "alt_blocked": np.array([bool(getattr(a, "blocked", False)) for a in alternatives],
                                dtype="u1"),
        "allowed_count": np.array([len(getattr(t, "allowed", ())) for t in tokens], dtype="<i4"),
        "allowed_text": [a.text for a in allowed],
        "allowed_token_id": np.array([a.token_id for a in allowed], dtype="<i4"),
        "allowed_logprob": np.array([a.logprob for a in allowed], dtype="<f8"),
    }


def _columns(sequences: Sequence[Sequence[TokenInfo]]) -> dict[str, Any]:
    return {**token_columns([t for sequence in sequences for t in sequence]),
            "seq_length": np.array([len(s) for s in sequences], dtype="<i4")}


def token_title(token: TokenInfo) -> str:
    """A token's numbers and alternatives as text (the static rendering's `title`)."""
    parts = []
    constrained = getattr(token, "constrained_logprob", None)
    if constrained is not None:
        parts.append(f"p {static.format_percent(math.exp(constrained))} among the allowed tokens")
    parts += [f"{'model' + chr(39) + 's own p' if constrained is not None else 'p'} "
              f"{static.format_percent(token.prob)}",
              f"logprob {static.format_number(token.logprob)}",
              f"rank {token.rank or '–'}",
              f"entropy {static.format_number(token.entropy, 3)} nats"]
    lines = [" · ".join(parts)]
    allowed = getattr(token, "allowed", ())
    if allowed:
        lines.append("allowed: " + ", ".join(
            f"{a.text!r} {static.format_percent(math.exp(a.logprob))}" for a in allowed))
    if token.top:
        lines.append("model's top: " + ", ".join(
            f"{a.text!r} {static.format_percent(math.exp(a.logprob))}"
            + (" (blocked)" if getattr(a, "blocked", False) else "") for a in token.top))
    return "\n".join(lines)


def token_html(token: TokenInfo) -> str:
    """A token as the static renderings show it: its text, coloured, numbers in `title`."""
    return static.coloured(static.text_html(token.text), shown_logprob(token), token_title(token),
                           "box-shadow: inset -1px 0 0 rgba(128,128,128,0.55)")


def totals(tokens: Sequence[TokenInfo]) -> str:
    """A sequence's total log-probability and perplexity, as the view shows them."""
    total = float(sum(t.logprob for t in tokens))
    if not tokens:
        return ""
    return (f"Σ logprob {static.format_number(total, 2)} · perplexity "
            f"{static.format_number(math.exp(-total / len(tokens)), 2)}")


def _suppress_next_empty_result() -> None:
    """Have the kernel not send the next execute_result if it is empty (the value whose
    view was displayed instead), where the kernel allows such a hook."""
    from IPython import get_ipython

    hook_owner: Any = getattr(get_ipython(), "displayhook", None)
    if not hasattr(hook_owner, "register_hook"):
        return

    def hook(message: Any) -> Any:
        hook_owner.unregister_hook(hook)
        data = message.get("content", {}).get("data", {})
        return None if data == {"text/plain": ""} else message

    hook_owner.register_hook(hook)


def branch_label(row: Any, parent: int) -> str:
    """Where a branch departs: "from #2 at token 5: 'the' → 'a'" (as the view labels it)."""
    replaced = row.parent.tokens[row.position].text
    chosen = row.tokens[0].text if row.tokens else "…"
    return f"from #{parent + 1} at token {row.position + 1}: {replaced!r} → {chosen!r}"


class TokenView(LmqlWidget):
    """Generated tokens, one row per sequence, coloured by `color_by`.

    Hovering a token shows its top-k alternatives with their probabilities, the chosen
    token's rank and the entropy of the distribution it was drawn from. Build one with
    `lmql_nb.show(generation)` from `generate(..., return_details=True)`; the magic
    `%%lmql_generate` fills one as tokens arrive.

    With the `model` the generations came from (`show(generation, model=m)`; the magic
    passes it), clicking an alternative in a tooltip branches there (`LLM.branch`): the
    branch streams into a row beneath, can be branched again or removed, and is
    available as `view.branches`; `branch()` and `remove_branch()` do the same from
    Python. `branch_options` are passed to every branch (e.g. the decoder).
    """

    view = "token_view"
    columns = {**COLUMNS, **BRANCH_COLUMNS}
    _page_traits = ("prompt", "color_by", "status", "stage", "finish_reasons", "elapsed")

    prompt = traitlets.Unicode("").tag(sync=True)
    color_by = traitlets.Enum(COLOR_METRICS, default_value="prob").tag(sync=True)
    status = traitlets.Enum(STATUSES, default_value="done").tag(sync=True)
    #: while loading: what is being done ("loading the model")
    stage = traitlets.Unicode("").tag(sync=True)
    #: seconds spent generating the tokens shown (for tokens per second; 0: unknown)
    elapsed = traitlets.Float(0.0).tag(sync=True)
    finish_reasons = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: True when clicking an alternative branches (a model is attached)
    can_branch = traitlets.Bool(False).tag(sync=True)
    #: why the last click could not branch ("" when it could)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(self, generations: Union[Generation, Iterable[Generation]] = (), *,
                 prompt: str | None = None, model: Any = None,
                 branch_options: Optional[dict] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._rows = Rows()
        self._lock = threading.RLock()
        self._running: dict[int, concurrent.futures.Future] = {}
        #: the displays showing this view, updated when its branches change (so that
        #: their static rendering, what a saved notebook keeps, shows the branches)
        self.display_handles: list[Any] = []
        self.attach_model(model, branch_options)
        generations = [generations] if isinstance(generations, Generation) else list(generations)
        if generations:
            self.set_generations(generations)
        if prompt is not None:
            self.prompt = prompt
        self.on_msg(self._on_message)

    def attach_model(self, model: Any, branch_options: Optional[dict] = None) -> None:
        """Branch with `model` (an `lmql_nb.LLM`; None: no branching) and `branch_options`."""
        from ...generations.llm import LLM

        if model is not None and not isinstance(model, LLM):
            raise TypeError(f"model must be an lmql_nb.LLM, got {type(model).__name__}")
        self.model = model
        self.branch_options = {k: v for k, v in (branch_options or {}).items()
                               if k not in ("n", "return_details", "max_tokens")}
        self.can_branch = model is not None

    def set_generations(self, generations: Sequence[Generation], status: str = "done",
                        elapsed: Optional[float] = None) -> None:
        """Show finished `generations` (one row each)."""
        if generations and not self.prompt:
            self.prompt = generations[0].prompt
        self.set_tokens([g.tokens for g in generations], status,
                        [g.finish_reason for g in generations], elapsed, generations)

    def set_tokens(self, sequences: Sequence[Sequence[TokenInfo]], status: str = "generating",
                   finish_reasons: Sequence[str] = (), elapsed: Optional[float] = None,
                   generations: Sequence[Generation] = ()) -> None:
        """Show `sequences` of tokens so far (in one message to the front end);
        `elapsed`: the seconds they took. Branches shown before are dropped."""
        with self._lock:
            self._rows.set_sequences(sequences, generations)
        with self.hold_sync():
            self._push()
            self.status = status
            self.finish_reasons = list(finish_reasons)
            if elapsed is not None:
                self.elapsed = float(elapsed)

    def _push(self) -> None:
        with self._lock:
            self.data = self.pack({**_columns(self._rows.sequences()), **self._rows.columns()})

    @property
    def _sequences(self) -> list[list[TokenInfo]]:
        return self._rows.originals

    # branching ----------------------------------------------------------------------

    @property
    def branches(self) -> list[Branch]:
        """The branches shown: `Branch(row, parent, position, token_id, status, tokens,
        generation)`, in the order they were made."""
        with self._lock:
            return self._rows.branches()

    def branch(self, row: int, position: int, token: Any,
               max_tokens: Optional[int] = None,
               **options: Any) -> "concurrent.futures.Future[Branch]":
        """Branch row `row` at token `position` with `token` (an `Alternative`, a token
        id or a one-token text), as clicking an alternative does: a new row streams in
        beneath. Returns a future of the finished `Branch` (failed branches show their
        error in the row). `max_tokens` defaults to the rest of the row's length (at
        least 16)."""
        from ...core.results import Alternative

        if self.model is None:
            raise ValueError("this view has no model to branch with: show it with "
                             "lmql_nb.show(generation, model=llm)")
        token_id = token.token_id if isinstance(token, Alternative) else \
            token if isinstance(token, int) and not isinstance(token, bool) else -1
        with self._lock:
            source = self._rows.row(row)
            new = self._rows.add_branch(row, position, token_id)
            generation = source.generation
        limit = max_tokens if max_tokens is not None else max(len(source.tokens) - position, 16)
        options = {**self.branch_options, **options}
        self._push()
        last = [0.0]

        def on_token(index: int, info: TokenInfo) -> None:
            with self._lock:
                new.tokens.append(info)
            now = time.monotonic()
            if now - last[0] > STREAM_INTERVAL:
                last[0] = now
                self._push()

        model = self.model

        async def run() -> Branch:
            try:
                assert generation is not None  # a row the view shows has its generation
                result = await model.branch(generation, position, token, limit,
                                            on_token=on_token, **options)
                assert isinstance(result, Generation)  # n=1
                with self._lock:
                    new.generation = result
                    new.tokens = list(result.tokens)
                    new.token_id = result.tokens[0].token_id if result.tokens else token_id
                    new.status = "done"
            except BaseException as error:
                with self._lock:
                    new.status = "cancelled" if isinstance(error, (asyncio.CancelledError,
                        concurrent.futures.CancelledError)) else f"failed: {error}"
                raise
            finally:
                self._running.pop(new.key, None)
                self._push()
                self._refresh_displays()
            with self._lock:
                return self._rows.snapshot(new)

        future = aio.submit(run())
        self._running[new.key] = future
        return future

    def remove_branch(self, row: int) -> None:
        """Remove branch row `row` and the branches grown from it (stopping any that
        are still generating)."""
        with self._lock:
            self._rows.remove(row)
            kept = self._rows.keys()
        for key in [key for key in self._running if key not in kept]:
            future = self._running.pop(key, None)
            if future is not None:
                future.cancel()
        self._push()
        self._refresh_displays()

    def _refresh_displays(self) -> None:
        """Give every display of this view its current static rendering and text."""
        for handle in list(self.display_handles):
            data, metadata = self.mimebundle()
            handle.update(data, metadata=metadata, raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """As every view; a view that can branch, shown as a cell's value in a kernel,
        shows itself as an updatable display instead (a cell's value cannot be updated
        later, and its static rendering must gain the branches) and leaves the value's
        own output empty."""
        from ..display import in_kernel

        if self.model is None or not in_kernel():
            return super()._repr_mimebundle_(**kwargs)
        from IPython.display import display

        data, metadata = self.mimebundle()
        self.display_handles.append(display(data, metadata=metadata, raw=True,
                                            display_id=True))
        _suppress_next_empty_result()
        return {"text/plain": ""}, {}
    def _on_message(self, _: Any, content: Any, buffers: Any) -> None:
        """Clicks in the front end: {"type": "branch", row, position, token_id} or
        {"type": "remove", row}. A bad request shows in the status line, never raises."""
        try:
            if not isinstance(content, dict):
                return
            # checked by branch(): a bad value is a TypeError or ValueError
            row: Any = content.get("row")
            position: Any = content.get("position")
            if content.get("type") == "branch":
                self.branch(row, position, content.get("token_id"))
            elif content.get("type") == "remove":
                self.remove_branch(row)
        except (TypeError, ValueError) as error:
            self.notice = f"cannot branch: {error}"

    def text(self) -> str:
        """The generated text: the one completion, or each under a "[i]" header."""
        texts = ["".join(t.text for t in s) for s in self._sequences]
        if len(texts) == 1:
            return texts[0]
        return "\n".join(f"[{i}] {text}" for i, text in enumerate(texts, 1))

    def static_html(self) -> str:
        """The tokens as coloured spans (numbers and alternatives in `title`s), the end of
        the prompt in grey, per-sequence totals for several sequences."""
        with self._lock:
            all_rows = list(self._rows._rows)
            order = self._rows.tree_order()
            shared = [self._rows.shared_logprob(r) for r in all_rows]
        many = len(all_rows) > 1
        tail = self.prompt[-PROMPT_TAIL:]
        prompt = (f'<span style="{static.MUTED}; opacity: 0.55" title="the end of the prompt">'
                  f'{"…" if len(self.prompt) > PROMPT_TAIL else ""}{static.text_html(tail)}</span>')
        rows = []
        for index in order:
            row = all_rows[index]
            spans = "".join(token_html(t) for t in row.tokens)
            label = (f'<div style="{static.MUTED}; {static.CODE}; min-width: 2em">#{index + 1}'
                     f'</div>' if many else "")
            total = (f'<div style="{static.MUTED}; white-space: nowrap">{totals(row.tokens)}</div>'
                     if many else "")
            head = prompt
            indent = ""
            if row.parent is not None:
                parent = all_rows.index(row.parent)
                indent = f"margin-left: {1.5 * self._rows.depth(row):g}em; "
                head = (f'<div style="{static.MUTED}">↳ {static.escape(branch_label(row, parent))}'
                        f'</div>')
                own = shared[index] + sum(t.logprob for t in row.tokens)
                before = shared[parent] + sum(t.logprob for t in row.parent.tokens)
                total = (f'<div style="{static.MUTED}; white-space: nowrap">Σ logprob '
                         f'{static.format_number(own, 2)}'
                         f' (#{parent + 1}: {static.format_number(before, 2)})</div>')
            rows.append(f'<div style="display: flex; gap: 8px; padding: 3px 0; {indent}">{label}'
                        f'<div style="flex: 1; {static.CODE}; white-space: pre-wrap; '
                        f'overflow-wrap: break-word; line-height: 1.7">{head}{spans}</div>'
                        f'{total}</div>')
        count = sum(len(s) for s in self._sequences)
        reasons = ", ".join(dict.fromkeys(self.finish_reasons))
        status = f"{count} token{'' if count == 1 else 's'}" + (
            f" · finished: {static.escape(reasons)}" if reasons else "")
        return (f'<div class="lmnb-static" style="{static.FONT}">{static.legend_html()}'
                f'{"".join(rows)}<div style="{static.MUTED}">{status}</div></div>')

    @property
    def sequences(self) -> list[list[TokenInfo]]:
        """The tokens shown, one list per sequence."""
        return [list(s) for s in self._sequences]

    def to_pandas(self) -> Any:
        """One row per token: sequence, position, text, id, logprob, prob, rank, entropy,
        and the top-k alternatives as (text, logprob) pairs."""
        import pandas as pd

        rows = [{"sequence": s, "position": i, "token": t.text, "token_id": t.token_id,
                 "logprob": t.logprob, "prob": t.prob, "rank": t.rank, "entropy": t.entropy,
                 "top": [(a.text, a.logprob) for a in t.top]}
                for s, sequence in enumerate(self._sequences) for i, t in enumerate(sequence)]
        columns = ["sequence", "position", "token", "token_id", "logprob", "prob", "rank",
                   "entropy", "top"]
        return pd.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        count = len(self._sequences)
        tokens = sum(len(s) for s in self._sequences)
        return (f"TokenView({count} sequence{'' if count == 1 else 's'}, "
                f"{tokens} token{'' if tokens == 1 else 's'}, {self.status})")
