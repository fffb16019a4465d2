"""anywidget views of lmql_nb results: `TokenView` for generations, `ScoringHeatmap`
for a `ScoringResult` (or a `ScoreComparison`), `DatasetView` for a `ScoringTable`,
`TraceView` for query programs, `ComparisonView` for a `Comparison`. Python holds the
data; `js/` (built into `lmql_nb/static/`) draws."""

from .comparison import ComparisonView
from .dataset import DatasetView
from .heatmap import ScoringHeatmap
from .token_view import TokenView
from .trace_view import TraceView

__all__ = ["TokenView", "ScoringHeatmap", "TraceView", "ComparisonView", "DatasetView"]
