"""The views of lmql_nb results (anywidgets): `TokenView` for generations,
`ScoringHeatmap` for a `ScoringResult` (or a `ScoreComparison`), `DatasetView` for a
`ScoringTable`, `TraceView` for query programs, `ComparisonView` for a `Comparison`.

One module per view; `tokens` is the token rendering they share, `static` the pieces of
their static HTML, `registry` which view draws which result (`show()`). Python holds the
data; `js/` (built into `lmql_nb/static/`) draws.
"""

from .comparison import ComparisonView
from .dataset import DatasetView
from .heatmap import ScoringHeatmap
from .registry import show, shows
from .token_view import TokenView
from .trace_view import TraceView

__all__ = ["TokenView", "ScoringHeatmap", "TraceView", "ComparisonView", "DatasetView",
           "show", "shows"]
