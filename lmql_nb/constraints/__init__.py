"""Constrained generation: LMQL's constraint vocabulary as token masks (llguidance).

`parse` validates `generate`'s constraint options (and `where`, parsed by `where`) into
a `ConstraintSpec` (`spec`); `grammar` turns it into an llguidance grammar; `matcher` keeps the
per-sequence state the decode loops mask logits with; `stops` cuts a finished text at its
stop string. (What an OpenAI-compatible server accepts for a spec is the OpenAI backend's
`dialect`.)
Only `parse` (with `spec`, `grammar`, `stops` and `keywords`) is imported eagerly: none of
them imports torch, and `grammar` imports llguidance only when it compiles.
"""

from .parse import parse_constraints
from .spec import CONSTRAINT_KEYS, ConstraintSpec

__all__ = ["CONSTRAINT_KEYS", "ConstraintSpec", "parse_constraints"]
