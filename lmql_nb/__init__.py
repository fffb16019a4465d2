"""lmql_nb: LMQL's Generations API for Jupyter.

    import lmql_nb
    m = lmql_nb.model("local:gemma-3-270m")
    m.generate_sync("Hello", max_tokens=10)
    m.score_sync("The capital of France is", [" Paris", " London"])

LMQL query programs run on the same engine: `@lmql_nb.query`, `lmql_nb.run`,
`lmql_nb.F` (see `lmql_nb.query.functions`).

Importing lmql_nb is cheap: torch and transformers load with the first `local:` model;
`llama.cpp:` models never import them, and `openai/` or served models run no model here.
"""

from typing import Any

from .core import display_hooks
from .core.version import VERSION
from .api import (LMQLTokenizer, generate, generate_sync, get_default_model, model, score,
                  score_many, score_many_sync, score_sync, set_default_model, tokenizer)
from .generations.comparison import (Comparison, ScoreComparison, compare, compare_scores,
                         compare_scores_sync, compare_sync)
from .generations.llm import LLM
from .query import decorators  # `lmql.decorators.pre` / `.streaming`, as in LMQL
from .query.builder import QueryBuilder
from .query.functions import (F, QueryFunction, main, query, run,  # binds `query` to the
                              run_sync)                           # decorator, not the package
from .query.output import headless, printing, silent, stream
from .generations.tracing import InferenceCertificate, certificate, traced
from .query.result import LMQLResult
from .backends.registry import register_backend
from .generations.result_cache import clear_cache, set_cache
from .core.results import Alternative, Generation, TokenInfo
from .core.scoring import ScoringResult, ScoringTable

__version__ = VERSION


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext lmql_nb`: register the `%%lmql`, `%%lmql_generate` and `%lmql_score`
    magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def show(result: Any, **options: Any) -> Any:
    """The notebook widget for a `ScoringResult`, `ScoringTable`, `Generation`(s) or
    `LMQLResult`(s);
    see `lmql_nb.notebook.display.show`."""
    from .notebook.display import show as show_widget

    return show_widget(result, **options)


def _notebook_display(result: Any) -> dict:
    """Results' rich display: the notebook layer's widget inside a kernel (imported on
    first display; the layers below know nothing of notebooks)."""
    from .notebook.display import mimebundle

    return mimebundle(result)


display_hooks.register_display(_notebook_display)


__all__ = [
    "LLM", "ScoringResult", "ScoringTable", "Generation", "TokenInfo", "Alternative", "model",
    "generate", "generate_sync", "score", "score_sync", "score_many", "score_many_sync",
    "set_default_model", "get_default_model",
    "load_ipython_extension", "show", "set_cache", "clear_cache", "compare", "compare_sync",
    "Comparison", "compare_scores", "compare_scores_sync", "ScoreComparison", "query", "run",
    "run_sync", "F", "LMQLResult", "QueryBuilder", "register_backend",
    "main", "stream", "printing", "silent", "headless", "tokenizer", "LMQLTokenizer",
    "QueryFunction", "LMQLQueryFunction", "decorators", "traced", "certificate",
    "InferenceCertificate",
]

#: LMQL's name for a query function
LMQLQueryFunction = QueryFunction
