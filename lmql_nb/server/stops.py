"""Stop strings while streaming: how much of a row's text is safe to send.

The engine ends a row at a stop string and cuts the text there (`stops_before` drops
the stop string, as OpenAI's `stop` does; `stops_at` keeps it, as vLLM's
`include_stop_str_in_output`). Its token callbacks, though, report tokens before that
cut is known, so a stream holds back a tail that could still become a stop string, and
cuts where the engine cuts (`lmql_nb.constraints.stops.stop_cut`).
"""

from __future__ import annotations

from typing import Optional, Sequence


class StopScanner:
    """Follows one row's text piece by piece; says what may be sent."""

    def __init__(self, stops: Sequence[str], keep: bool = False, min_tokens: int = 0):
        from ..constraints import ConstraintSpec

        self.stops = tuple(stops)
        self.spec = (ConstraintSpec(stops_at=self.stops) if keep
                     else ConstraintSpec(stops_before=self.stops))
        self.text = ""
        self.sent = 0
        self.cut: Optional[int] = None
        self.min_tokens = min_tokens  # stop strings count from the token that reaches it
        self.pieces = 0
        self.floor = 0

    def feed(self, piece: str) -> str:
        """Add `piece` (one token's text); return the text that is now safe to send."""
        from ..constraints.stops import stop_cut, undecided_tail

        if self.cut is not None:
            return ""
        if self.pieces == self.min_tokens - 1:
            self.floor = len(self.text)
        self.pieces += 1
        self.text += piece
        counts = self.stops and self.pieces >= self.min_tokens
        cut = stop_cut(self.text, self.spec, self.floor) if counts else None
        if cut is not None:
            self.cut = cut
            return self._release(cut)
        return self._release(len(self.text) - undecided_tail(self.text, self.stops))

    def flush(self) -> str:
        """The text still held back, at the end of the row."""
        return self._release(len(self.text) if self.cut is None else self.cut)

    def _release(self, end: int) -> str:
        if end <= self.sent:
            return ""
        out = self.text[self.sent:end]
        self.sent = end
        return out
