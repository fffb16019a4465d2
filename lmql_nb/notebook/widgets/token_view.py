"""`TokenView`: generated tokens coloured by the model's confidence, top-k on hover."""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence, Union

import numpy as np
import traitlets

from ...results import Generation, TokenInfo
from .. import codec
from .base import STATIC, LmqlWidget

COLOR_METRICS = ("prob", "logprob", "entropy", "rank")
STATUSES = ("generating", "done", "interrupted")


def token_columns(tokens: Sequence[TokenInfo]) -> dict[str, Any]:
    """The per-token columns both the token view and the trace view draw (and hover)."""
    alternatives = [a for t in tokens for a in t.top]
    return {
        "text": [t.text for t in tokens],
        "token_id": np.array([t.token_id for t in tokens], dtype="<i4"),
        "logprob": np.array([t.logprob for t in tokens], dtype="<f8"),
        "rank": np.array([t.rank or 0 for t in tokens], dtype="<i4"),
        "entropy": np.array([math.nan if t.entropy is None else t.entropy for t in tokens],
                            dtype="<f8"),
        "alt_count": np.array([len(t.top) for t in tokens], dtype="<i4"),
        "alt_text": [a.text for a in alternatives],
        "alt_token_id": np.array([a.token_id for a in alternatives], dtype="<i4"),
        "alt_logprob": np.array([a.logprob for a in alternatives], dtype="<f8"),
        # set by constrained decoding: the model proposed it, the constraint refused it
        "alt_blocked": np.array([bool(getattr(a, "blocked", False)) for a in alternatives],
                                dtype="u1"),
    }


def _columns(sequences: Sequence[Sequence[TokenInfo]]) -> dict[str, Any]:
    return {**token_columns([t for sequence in sequences for t in sequence]),
            "seq_length": np.array([len(s) for s in sequences], dtype="<i4")}


class TokenView(LmqlWidget):
    """Generated tokens, one row per sequence, coloured by `color_by`.

    Hovering a token shows its top-k alternatives with their probabilities, the chosen
    token's rank and the entropy of the distribution it was drawn from. Build one with
    `lmql_nb.show(generation)` from `generate(..., return_details=True)`; the magic
    `%%lmql_generate` fills one as tokens arrive.
    """

    _esm = STATIC / "token_view.js"
    _view = "token_view"
    _page_traits = ("prompt", "color_by", "status", "finish_reasons")

    prompt = traitlets.Unicode("").tag(sync=True)
    color_by = traitlets.Enum(COLOR_METRICS, default_value="prob").tag(sync=True)
    status = traitlets.Enum(STATUSES, default_value="done").tag(sync=True)
    finish_reasons = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, generations: Union[Generation, Iterable[Generation]] = (), *,
                 prompt: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._sequences: list[list[TokenInfo]] = []
        generations = [generations] if isinstance(generations, Generation) else list(generations)
        if generations:
            self.set_generations(generations)
        if prompt is not None:
            self.prompt = prompt

    def set_generations(self, generations: Sequence[Generation], status: str = "done") -> None:
        """Show finished `generations` (one row each)."""
        if generations and not self.prompt:
            self.prompt = generations[0].prompt
        self.set_tokens([g.tokens for g in generations], status,
                        [g.finish_reason for g in generations])

    def set_tokens(self, sequences: Sequence[Sequence[TokenInfo]], status: str = "generating",
                   finish_reasons: Sequence[str] = ()) -> None:
        """Show `sequences` of tokens so far (in one message to the front end)."""
        self._sequences = [list(s) for s in sequences]
        with self.hold_sync():
            self.data = codec.pack(_columns(self._sequences))
            self.status = status
            self.finish_reasons = list(finish_reasons)

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
