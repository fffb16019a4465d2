"""`show(result)` and the rich display of results in a notebook: the view registered for
the result's type (see `.views.registry`)."""

from __future__ import annotations

from typing import Any

from .kernel import in_kernel


def show(result: Any, **options: Any) -> Any:
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
        from .views import show as show_view
    except ImportError as error:
        raise ImportError(f"lmql_nb's widgets need the notebook extra ({error}): "
                          "pip install 'lmql_nb[notebook]'") from error
    return show_view(result, **options)


def mimebundle(result: Any) -> Any:
    """The display of `result`: in a kernel, its view (live widget, static HTML, and its
    text as text/plain: the generated text or the scores table); elsewhere `repr`."""
    if not in_kernel():
        return {"text/plain": repr(result)}
    try:
        widget = show(result)
    except ImportError:  # the notebook extra (anywidget) is not installed
        return {"text/plain": repr(result)}
    return widget.mimebundle()


__all__ = ["show", "mimebundle", "in_kernel"]
