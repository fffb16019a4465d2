"""`ComparisonView`: one text under several models, coloured by where they differ."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import traitlets

from ...generations.comparison import Comparison
from . import static
from .base import LmqlWidget
from .registry import shows
from .tokens import TOKEN_COLUMNS, token_columns, token_title

#: the ends of the colour scale (± nats): the first that holds every difference
DIFFERENCE_RANGES = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

COLUMNS = {**TOKEN_COLUMNS, "seg_text": "str", "seg_difference": "f8",
           "seg_model_logprob": "f8", "seg_model_tokens": "i4"}


def _columns(comparison: Comparison) -> dict[str, Any]:
    """Per segment: its text, the difference (second model minus first), and per model
    (segment-major) its log-probability and token count; then every model's tokens of
    every segment, in that order, as `TOKEN_COLUMNS`."""
    models = range(len(comparison.labels))
    logprobs = [comparison.segment_logprobs(m) for m in models]
    differences = (comparison.differences(1, 0) if len(comparison.labels) > 1
                   else [0.0] * len(comparison.segments))
    tokens = [comparison.tokens[m][i] for segment in comparison.segments for m in models
              for i in segment.tokens[m]]
    return {
        **token_columns(tokens),
        "seg_text": [comparison.text[s.start:s.end] for s in comparison.segments],
        "seg_difference": np.array(differences, dtype="<f8"),
        "seg_model_logprob": np.array([logprobs[m][k] for k in range(len(comparison.segments))
                                       for m in models], dtype="<f8"),
        "seg_model_tokens": np.array([len(s.tokens[m]) for s in comparison.segments
                                      for m in models], dtype="<i4"),
    }


def difference_range(differences: Sequence[float]) -> float:
    """The colour scale's end for these differences: ± the first of `DIFFERENCE_RANGES`
    that holds them all (so small differences still show; the legend says the range)."""
    largest = max((abs(d) for d in differences), default=0.0)
    return next((r for r in DIFFERENCE_RANGES if largest <= r), DIFFERENCE_RANGES[-1])


def difference_colour_value(difference: float, end: float) -> float:
    """The log-probability whose colour the shared scale gives to `difference` on
    [-end, end] (that range mapped onto the scale's domain)."""
    from .colours import scale

    lo, hi = scale()["domain"]
    return lo + (difference + end) / (2 * end) * (hi - lo)


@shows(Comparison)
class ComparisonView(LmqlWidget):
    """A `Comparison` (from `lmql_nb.compare`): the continuation once, each aligned piece
    coloured by how much more (light) or less (dark) likely the second model finds it
    than the first; hovering a piece shows every model's log-probability, rank and top
    alternatives for it. `to_pandas()` gives the table."""

    view = "comparison"
    columns = COLUMNS
    _page_traits = ("prompt", "labels", "same_tokens", "difference_range")

    prompt = traitlets.Unicode("").tag(sync=True)
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    same_tokens = traitlets.Bool(True).tag(sync=True)
    #: the colour scale runs from -difference_range to +difference_range nats
    difference_range = traitlets.Float(2.0).tag(sync=True)

    def __init__(self, comparison: Comparison, **kwargs: Any):
        if not isinstance(comparison, Comparison):
            raise TypeError(f"ComparisonView needs an lmql_nb.Comparison, got "
                            f"{type(comparison).__name__}")
        super().__init__(**kwargs)
        self.comparison = comparison
        self.prompt = comparison.prompt
        self.labels = comparison.labels
        self.same_tokens = comparison.same_tokens
        columns = _columns(comparison)
        self.difference_range = difference_range(columns["seg_difference"].tolist())
        self.data = self.pack(columns)

    def text(self) -> str:
        return repr(self.comparison)

    def to_pandas(self) -> Any:
        """See `Comparison.to_pandas`."""
        return self.comparison.to_pandas()

    def static_html(self) -> str:
        """The text once, each piece coloured by the difference, every model's numbers
        and tokens in its `title`."""
        c = self.comparison
        models = range(len(c.labels))
        logprobs = [c.segment_logprobs(m) for m in models]
        differences = c.differences(1, 0) if len(c.labels) > 1 else [0.0] * len(c.segments)
        spans = []
        for k, segment in enumerate(c.segments):
            lines = []
            for m in models:
                tokens = [c.tokens[m][i] for i in segment.tokens[m]]
                lines.append(f"{c.labels[m]}: logprob {static.format_number(logprobs[m][k])}")
                lines += [f"  {t.text!r}: {token_title(t).splitlines()[0]}" for t in tokens]
            title = "\n".join(lines)
            spans.append(static.coloured(static.text_html(c.text[segment.start:segment.end]),
                                         difference_colour_value(differences[k],
                                                                 self.difference_range), title,
                                         "box-shadow: inset -1px 0 0 rgba(128,128,128,0.55)"))
        totals = " · ".join(f"{static.escape(label)}: Σ logprob {static.format_number(total, 2)}"
                            for label, total in c.totals().items())
        note = ("" if c.same_tokens else
                " · tokenizers differ: aligned on character spans")
        heading = (f"colour: logprob of {static.escape(c.labels[1])} minus "
                   f"{static.escape(c.labels[0])}, from −{self.difference_range:g} (dark: less "
                   f"likely) through 0 (grey) to +{self.difference_range:g} nats (light: more "
                   f"likely)" if len(c.labels) > 1 else "")
        return (f'<div class="lmnb-static" style="{static.FONT}">'
                f'<div style="{static.MUTED}">{heading}</div>'
                f'<div style="{static.CODE}; white-space: pre-wrap; overflow-wrap: break-word; '
                f'line-height: 1.7"><span style="{static.MUTED}; opacity: 0.55">'
                f'{static.text_html(c.prompt[-60:])}</span>{"".join(spans)}</div>'
                f'<div style="{static.MUTED}">{totals}{note}</div></div>')

    def __repr__(self) -> str:
        return (f"ComparisonView({len(self.labels)} models, "
                f"{len(self.comparison.segments)} segments)")
