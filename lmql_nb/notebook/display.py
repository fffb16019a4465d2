"""`show(result)` and the rich display of results in a notebook."""

from __future__ import annotations

from typing import Any, Union

from ..generations.comparison import Comparison, ScoreComparison
from ..query.result import LMQLResult
from ..core.results import Generation
from ..core.scoring import ScoringResult, ScoringTable

Showable = Union[Generation, list, tuple, ScoringResult, ScoringTable, LMQLResult,
                 Comparison, ScoreComparison]


def show(result: Showable, **options: Any) -> Any:
    """The widget for `result`.

    - a `ScoringResult` (from `score`): a `ScoringHeatmap` (options: `agg`, `alpha`, `sort`);
    - a `ScoringTable` (from `score_many`): a `DatasetView` (options: `agg`, `alpha`, `sort`);
    - a `Generation` or a list of them (from `generate(..., return_details=True)`): a
      `TokenView` (option: `color_by`);
    - an `LMQLResult` or a list of them (from a query program): a `TraceView`, one row
      per result;
    - a `Comparison` (from `compare`): a `ComparisonView`;
    - a `ScoreComparison` (from `compare_scores`): a `ScoringHeatmap` with a group of
      rows per model.

    A `TokenView` given `model=` (the `LLM` the generation came from) offers branching.
    """
    try:
        from .widgets import ComparisonView, DatasetView, ScoringHeatmap, TokenView, TraceView
    except ImportError as error:
        raise ImportError(f"lmql_nb's widgets need the notebook extra ({error}): "
                          "pip install 'lmql_nb[notebook]'") from error

    if isinstance(result, (ScoringResult, ScoreComparison)):
        return ScoringHeatmap(result, **options)
    if isinstance(result, Comparison):
        return ComparisonView(result, **options)
    if isinstance(result, ScoringTable):
        return DatasetView(result, **options)
    if isinstance(result, Generation):
        return TokenView(result, **options)
    if isinstance(result, (list, tuple)) and result and all(
            isinstance(g, Generation) for g in result):
        return TokenView(result, **options)
    if isinstance(result, LMQLResult) or (isinstance(result, (list, tuple)) and result and all(
            isinstance(r, LMQLResult) for r in result)):
        return TraceView(result, **options)
    if isinstance(result, str) or (isinstance(result, (list, tuple))
                                   and all(isinstance(g, str) for g in result)):
        raise TypeError("show() needs per-token data, which plain text does not have: "
                        "call generate(..., return_details=True) and show its result")
    raise TypeError(f"show() accepts a ScoringResult, a ScoringTable, a Generation or a list "
                    f"of Generations, an LMQLResult or a list of LMQLResults, a Comparison or "
                    f"a ScoreComparison; got {type(result).__name__}")


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def mimebundle(result: Showable) -> Any:
    """The display of `result`: in a kernel, its view (live widget, static HTML, and its
    text as text/plain: the generated text or the scores table); elsewhere `repr`."""
    if not in_kernel():
        return {"text/plain": repr(result)}
    try:
        widget = show(result)
    except ImportError:  # the notebook extra (anywidget) is not installed
        return {"text/plain": repr(result)}
    return widget.mimebundle()
