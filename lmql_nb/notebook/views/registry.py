"""Which view shows which result: each view registers the result types it draws
(`@shows(Generation, many=True)` on its class); `show()` looks the result's type up.
Adding a view never means editing `show()`."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

V = TypeVar("V")

#: result type -> (the view that draws it, whether a list of them is one view too)
_VIEWS_OF: dict[type, tuple[Callable[..., Any], bool]] = {}


def shows(*types: type, many: bool = False) -> Callable[[V], V]:
    """Register the decorated view as what draws results of `types` (and, with `many`,
    a non-empty list or tuple of them, one row each)."""
    def register(view: V) -> V:
        for kind in types:
            known = _VIEWS_OF.get(kind)
            if known is not None and known[0] is not view:
                raise ValueError(f"{kind.__name__} is drawn by {known[0]!r} already")
            _VIEWS_OF[kind] = (view, many)  # type: ignore[assignment]
        return view
    return register


def _lookup(kind: type) -> Optional[tuple[Callable[..., Any], bool]]:
    for klass in kind.__mro__:
        if klass in _VIEWS_OF:
            return _VIEWS_OF[klass]
    return None


def view_for(result: Any) -> Optional[Callable[..., Any]]:
    """The view registered for `result` (or for every item of a list of results), or None."""
    found = _lookup(type(result))
    if found is not None:
        return found[0]
    if isinstance(result, (list, tuple)) and result:
        views = {_lookup(type(item)) for item in result}
        if len(views) == 1:
            [only] = views
            if only is not None and only[1]:
                return only[0]
    return None


def accepted() -> str:
    """What `show()` accepts, in words (for its error message)."""
    return ", ".join(kind.__name__ + (" (or a list of them)" if many else "")
                     for kind, (_, many) in _VIEWS_OF.items())


def show(result: Any, **options: Any) -> Any:
    """The registered view of `result`, built with `options`."""
    view = view_for(result)
    if view is not None:
        return view(result, **options)
    if isinstance(result, str) or (isinstance(result, (list, tuple))
                                   and all(isinstance(g, str) for g in result)):
        raise TypeError("show() needs per-token data, which plain text does not have: "
                        "call generate(..., return_details=True) and show its result")
    raise TypeError(f"show() accepts: {accepted()}; got {type(result).__name__}")
