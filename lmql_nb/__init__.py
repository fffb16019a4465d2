"""lmql_nb: LMQL's Generations API for Jupyter.

    import lmql_nb
    m = lmql_nb.model("local:gemma-3-270m")
    m.generate_sync("Hello", max_tokens=10)
    m.score_sync("The capital of France is", [" Paris", " London"])

Importing lmql_nb is cheap: torch and transformers load with the first model.
"""

from .api import (generate, generate_sync, get_default_model, model, score, score_sync,
                  set_default_model)
from .llm import LLM
from .results import Alternative, Generation, TokenInfo
from .scoring import ScoringResult

__version__ = "0.1.0"

__all__ = [
    "LLM", "ScoringResult", "Generation", "TokenInfo", "Alternative", "model", "generate",
    "generate_sync", "score", "score_sync", "set_default_model", "get_default_model",
]
