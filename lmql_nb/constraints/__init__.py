"""Constrained generation: LMQL's constraint vocabulary as token masks (llguidance).

`spec` validates `generate`'s constraint options (and `where`, parsed by `where`) into a
`ConstraintSpec`; `grammar` turns it into an llguidance grammar; `matcher` keeps the
per-sequence state the decode loops mask logits with; `stops` cuts a finished text at its
stop string. (What an OpenAI-compatible server accepts for a spec is the OpenAI backend's
`dialect`.)
Only `spec` and `where` are imported eagerly (they need neither torch nor llguidance).
"""

from .spec import CONSTRAINT_KEYS, ConstraintSpec, parse_constraints

__all__ = ["CONSTRAINT_KEYS", "ConstraintSpec", "parse_constraints"]
