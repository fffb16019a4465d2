"""`TokenView`: generated tokens coloured by the model's confidence, top-k on hover."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import traitlets

from ...core.results import Generation, TokenInfo
from ..kernel import display_updatable, in_kernel
from . import static
from .base import LmqlWidget
from .branching import BranchController
from .registry import shows
from .rows import BRANCH_COLUMNS, Branch, Rows
from .tokens import TOKEN_COLUMNS, token_columns, token_html, totals

# "logprob" is an older name of "prob": both colour by the log-probability scale
COLOR_METRICS = ("prob", "logprob", "entropy", "rank")
STATUSES = ("loading", "generating", "done", "interrupted")
PROMPT_TAIL = 60  # characters of the prompt shown (in grey) before each completion

COLUMNS = {**TOKEN_COLUMNS, "seq_length": "i4"}


def _columns(sequences: Sequence[Sequence[TokenInfo]]) -> dict[str, Any]:
    return {**token_columns([t for sequence in sequences for t in sequence]),
            "seq_length": np.array([len(s) for s in sequences], dtype="<i4")}


def branch_label(row: Any, parent: int) -> str:
    """Where a branch departs: "from #2 at token 5: ·the → ·a" (as the view labels it)."""
    replaced = row.parent.tokens[row.position].text
    chosen = row.tokens[0].text if row.tokens else "…"
    return (f"from #{parent + 1} at token {row.position + 1}: {static.marked(replaced)} → "
            f"{static.marked(chosen) if row.tokens else chosen}")


@shows(Generation, many=True)
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
    _page_traits = ("prompt", "role", "color_by", "status", "stage", "finish_reasons",
                    "elapsed", "cache_age")

    prompt = traitlets.Unicode("").tag(sync=True)
    #: for a chat ("assistant"): the turn the tokens are, labelled after the prompt's end
    #: (the template's rendering, control tokens included, in grey)
    role = traitlets.Unicode("").tag(sync=True)
    color_by = traitlets.Enum(COLOR_METRICS, default_value="prob").tag(sync=True)
    status = traitlets.Enum(STATUSES, default_value="done").tag(sync=True)
    #: while loading: what is being done ("loading the model")
    stage = traitlets.Unicode("").tag(sync=True)
    #: seconds spent generating the tokens shown (for tokens per second; 0: unknown)
    elapsed = traitlets.Float(0.0).tag(sync=True)
    #: for tokens from the result cache: how old the cache entry was, in seconds (-1: not
    #: from the cache); the status then says so instead of a speed
    cache_age = traitlets.Float(-1.0).tag(sync=True)
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
        self._branching = BranchController(self._rows, self._lock, self._push,
                                           self._refresh_displays)
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
        self._branching.attach(model, branch_options)
        self.can_branch = model is not None

    @property
    def model(self) -> Any:
        """The `LLM` that branches (None: the view does not branch)."""
        return self._branching.model

    @property
    def _running(self) -> dict[int, "concurrent.futures.Future"]:
        """The branches still generating, by row key (their futures)."""
        return self._branching.running

    @property
    def branch_options(self) -> dict[str, Any]:
        """The options every branch is generated with."""
        return self._branching.options

    def set_generations(self, generations: Sequence[Generation], status: str = "done",
                        elapsed: Optional[float] = None,
                        cached_at: Optional[float] = None) -> None:
        """Show finished `generations` (one row each); `cached_at`: when the result cache
        computed them (time.time()), if they came from it."""
        if generations and not self.prompt:
            self.prompt = generations[0].prompt
        if generations and generations[0].messages:
            self.role = "assistant"
        self.cache_age = -1.0 if cached_at is None else max(0.0, time.time() - cached_at)
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
        return self._branching.branch(row, position, token, max_tokens, **options)

    def remove_branch(self, row: int) -> None:
        """Remove branch row `row` and the branches grown from it (stopping any that
        are still generating)."""
        self._branching.remove(row)

    def _refresh_displays(self) -> None:
        """Give every display of this view its current static rendering and text."""
        for handle in list(self.display_handles):
            data, metadata = self.mimebundle()
            handle.update(data, metadata=metadata, raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """As every view; a view that can branch, shown as a cell's value in a kernel,
        shows itself as an updatable display instead (its static rendering must gain the
        branches) and leaves the value's own output empty."""
        if self.model is None or not in_kernel():
            return super()._repr_mimebundle_(**kwargs)
        data, metadata = self.mimebundle()
        self.display_handles.append(display_updatable(data, metadata))
        return {"text/plain": ""}, {}

    def _on_message(self, _: Any, content: Any, buffers: Any) -> None:
        """Clicks in the front end (see `BranchController.on_message`)."""
        notice = self._branching.on_message(content)
        if notice:
            self.notice = notice

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
        if self.role:  # a chat: the tokens are this role's turn
            prompt += (f' <span class="lmnb-trace-role" style="{static.MUTED}; font-weight: 600; '
                       f'border: 1px solid rgba(128,128,128,0.5); border-radius: 3px; '
                       f'padding: 0 4px">{static.escape(self.role)}</span> ')
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
            f" · {static.cached_text(self.cache_age)}" if self.cache_age >= 0 else "") + (
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
