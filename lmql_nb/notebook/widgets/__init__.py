"""anywidget views of lmql_nb results: `TokenView` for generations, `ScoringHeatmap`
for a `ScoringResult`. Python holds the data; `js/` (built into `lmql_nb/static/`) draws."""

from .heatmap import ScoringHeatmap
from .token_view import TokenView

__all__ = ["TokenView", "ScoringHeatmap"]
