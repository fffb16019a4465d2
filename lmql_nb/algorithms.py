"""`lmql.algorithms` as LMQL offers it: `map` and `reduce` over query functions.

    import lmql_nb.algorithms as la
    summaries = await la.map("Summarize: {text}: [SUMMARY]", texts,
                             where="len(TOKENS(SUMMARY)) < 10")

A query may be a query function (`@query`, `F`, `query(...)`), a prompt template string
(made an `F` function, with `where=` its constraints), or any plain or async Python
function. Query calls run concurrently, their model calls batched by the engine.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from .core import aio

Query = Union[str, Callable[..., Any]]


def _callable(q: Query, kwargs: dict[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
    """`q` as a function, and the keyword options left to pass on each call."""
    if isinstance(q, str):
        from .query.functions import F

        options = dict(kwargs)
        where = options.pop("where", None)
        return F(q, where, is_async=True, **options), {}
    if not callable(q):
        raise TypeError(f"a query must be a query function, a prompt template str or a "
                        f"callable, got {type(q).__name__}")
    return q, kwargs


async def apply(q: Query, *args: Any, **kwargs: Any) -> Any:
    """Call `q` with `args` (awaiting it where it is async) and return its result."""
    function, options = _callable(q, kwargs)
    if getattr(function, "__lmql_query__", False):
        return await function.run(*args, **options)  # type: ignore[attr-defined]
    result = function(*args, **options)
    return await result if inspect.isawaitable(result) else result


async def map(q: Query, items: Iterable[Any], chunksize: Optional[int] = None,
              progress: bool = False, **kwargs: Any) -> list[Any]:
    """`q` applied to each item (concurrently, `chunksize` at a time: all by default);
    results in order. Keyword arguments are query options (`model=`, `where=` for a
    template string, ...)."""
    values = list(items)
    if chunksize is not None and (isinstance(chunksize, bool) or not isinstance(chunksize, int)
                                  or chunksize < 1):
        raise ValueError(f"chunksize must be a positive int, got {chunksize!r}")
    function, options = _callable(q, kwargs)
    size = chunksize or max(len(values), 1)
    results: list[Any] = []
    chunks: Iterable[Sequence[Any]] = [values[i:i + size] for i in range(0, len(values), size)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(list(chunks), unit="chunk")
    for chunk in chunks:
        results += await aio.gather(*[apply(function, item, **options) for item in chunk])
    return results


async def reduce(f: Query, items: Iterable[Any], initial: Any = None) -> Any:
    """Fold `items` with `f(accumulated, item)` (the first item starts unless `initial`
    is given)."""
    values = list(items)
    if initial is None:
        if not values:
            raise ValueError("reduce() of an empty sequence with no initial value")
        accumulated, values = values[0], values[1:]
    else:
        accumulated = initial
    for item in values:
        accumulated = await apply(f, accumulated, item)
    return accumulated


__all__ = ["map", "reduce", "apply"]
