"""`score_many`: scoring a whole column of prompts, streamed, with a progress bar.

Rows go through `LLM.score` (so the result cache and every backend work as for one
call), at most `window` of them in flight at once: memory stays bounded at any number of
rows, and the backend still sees enough concurrent calls to batch them (the in-process
engine runs them in shared forward passes; an HTTP backend sends them with its bounded
concurrency).
"""

from __future__ import annotations

import warnings
from typing import Any, Awaitable, Callable, Iterable, Optional, Union

from ..core import aio
from ..core.options import check_prompt, check_values
from ..core.scoring import ScoringResult, ScoringTable
from ..tokenization.chat import check_messages

Values = Union[str, list[str], list[list[str]]]


def check_prompts(prompts: Any) -> list[Any]:
    """`score_many`'s prompts as a list of valid strings or conversations (lists of
    `{"role", "content"}` messages)."""
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Iterable):
        raise TypeError(f"prompts must be a list (or any iterable) of str, got "
                        f"{type(prompts).__name__}")
    checked: list[Any] = [check_messages(p, f"prompts[{i}]") if isinstance(p, (list, tuple))
                          else check_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
    if not checked:
        raise ValueError("prompts must not be empty")
    return checked


def values_per_prompt(values: Any, count: int) -> list[list[str]]:
    """`score_many`'s values: one list shared by every prompt (a str or a list of str),
    or one list per prompt (a list of `count` lists)."""
    if isinstance(values, (list, tuple)) and values and all(
            isinstance(v, (list, tuple)) for v in values):
        if len(values) != count:
            raise ValueError(f"values has {len(values)} lists for {count} prompts: pass one "
                             "list per prompt, or one list shared by all")
        return [check_values(list(v)) for v in values]
    if isinstance(values, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in values):
        raise TypeError("values must be a list of str (shared by every prompt) or a list of "
                        "lists of str (one per prompt), not a mix")
    shared = check_values(values)
    return [shared] * count


def check_gold(gold: Any, values: list[list[str]]) -> Optional[list[str]]:
    """Gold labels: one of its row's values per prompt."""
    if gold is None:
        return None
    if isinstance(gold, str) or not isinstance(gold, Iterable):
        raise TypeError(f"gold must be a list of str (one per prompt), got {type(gold).__name__}")
    gold = list(gold)
    if len(gold) != len(values):
        raise ValueError(f"gold has {len(gold)} labels for {len(values)} prompts")
    for i, (label, row) in enumerate(zip(gold, values)):
        if label not in row:
            raise ValueError(f"gold[{i}] is {label!r}, which is not among that prompt's "
                             f"values {row!r}")
    return gold


def progress_bar(total: int, enabled: bool) -> Any:
    """tqdm's auto bar (a widget in notebooks, text in terminals), or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # always rows per second, averaged over the whole run: rows finish in bursts, which
    # tqdm's moving average and its inverted "s/rows" turned into "11.71s/rows" for 8 rows
    # in 11 s; this reads "8/8 [00:11<00:00, 0.70 rows/s]"
    return tqdm(total=total, unit=" rows", desc="scoring", dynamic_ncols=True, smoothing=0,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} "
                           "[{elapsed}<{remaining}, {rate_noinv_fmt}]")


async def fill(score: Callable[..., Awaitable[ScoringResult]], table: ScoringTable,
               window: int, bar: Any, options: dict) -> ScoringTable:
    """Score the table's unfinished rows with `score(prompt, values, **options)` (an
    `LLM.score`), at most `window` at once; each row is stored
    as it finishes. A failing row cancels the others and its error is raised (naming
    the row); a cancellation leaves the finished rows in `table`."""
    import anyio

    slots = anyio.Semaphore(window)

    async def row(index: int) -> None:
        try:
            result = await score(table.prompts[index], table.values[index], **options)
        except Exception as error:
            if hasattr(error, "add_note"):  # Python 3.11+
                error.add_note(f"while scoring prompts[{index}] of score_many")
            raise
        finally:
            slots.release()
        table.set(index, result)
        if bar is not None:
            bar.update(1)

    try:
        async with anyio.create_task_group() as group:
            for index in range(len(table)):
                if table[index] is None:
                    await slots.acquire()
                    group.start_soon(row, index)
    except Exception as error:  # an exception group: raise the first failure itself
        raise aio.first_failure(error) from None
    return table


def interrupted(table: ScoringTable) -> ScoringTable:
    """Warn that the table holds only the rows finished before an interrupt."""
    warnings.warn(f"score_many was interrupted: {table.finished} of {len(table)} rows are "
                  "scored (the others are None); calling it again with the result cache on "
                  "computes only the rest", RuntimeWarning, stacklevel=3)
    return table
