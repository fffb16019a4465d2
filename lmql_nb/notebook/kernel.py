"""What the notebook layer asks of the kernel it runs in: whether there is one, and an
updatable display for a value a cell returns.

The bottom of the notebook layer: the views and the magics import it; it imports
neither.
"""

from __future__ import annotations

from typing import Any


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def display_updatable(data: dict[str, Any], metadata: dict[str, Any]) -> Any:
    """Display `data` as an updatable display (returns its handle) in place of the value a
    cell returns: a cell's value cannot be updated later. The value's own output, which the
    caller makes empty, is then not sent, where the kernel allows such a hook."""
    from IPython.display import display

    handle = display(data, metadata=metadata, raw=True, display_id=True)
    _suppress_next_empty_result()
    return handle


def _suppress_next_empty_result() -> None:
    """Have the kernel not send the next execute_result if it is empty (the value whose
    view was displayed instead)."""
    from IPython import get_ipython

    hook_owner: Any = getattr(get_ipython(), "displayhook", None)
    if not hasattr(hook_owner, "register_hook"):
        return

    def hook(message: Any) -> Any:
        hook_owner.unregister_hook(hook)
        data = message.get("content", {}).get("data", {})
        return None if data == {"text/plain": ""} else message

    hook_owner.register_hook(hook)
