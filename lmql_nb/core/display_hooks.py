"""How results show themselves in rich front ends, without importing those front ends.

Result types (`Generation`, `ScoringResult`) sit at the bottom of lmql_nb and know
nothing of notebooks; their `_repr_mimebundle_` asks the hook registered here. The
package registers the notebook layer's hook (`lmql_nb/__init__.py`), which draws the
widget inside a Jupyter kernel; without a hook a result shows as its `repr`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

#: (result) -> a MIME bundle
DisplayHook = Callable[[Any], dict]

_hook: Optional[DisplayHook] = None


def register_display(hook: Optional[DisplayHook]) -> None:
    """Make `hook(result)` draw results from now on (None: plain text again)."""
    global _hook
    _hook = hook


def mimebundle(result: Any) -> dict:
    """The MIME bundle of `result`: the registered hook's, else its `repr` as text."""
    if _hook is None:
        return {"text/plain": repr(result)}
    return _hook(result)
