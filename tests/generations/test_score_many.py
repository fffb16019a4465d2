"""`score_many`: a dataset in one call, streamed, with progress and cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import numpy as np
import pytest

import lmql_nb
from lmql_nb.backends.engine.in_process import InProcessBackend

import reference

LABELS = [" France", " Germany", " river"]
PROMPTS = [f"Review {i}: the capital of" for i in range(12)] + ["Once upon a time", "The"]


@pytest.fixture
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


def _in_flight(monkeypatch) -> dict:
    """Record how many `score` calls the backend serves at once."""
    seen = {"now": 0, "max": 0, "calls": 0}
    original = InProcessBackend.score

    async def score(self, prompt, values, options):
        seen["now"] += 1
        seen["calls"] += 1
        seen["max"] = max(seen["max"], seen["now"])
        try:
            return await original(self, prompt, values, options)
        finally:
            seen["now"] -= 1

    monkeypatch.setattr(InProcessBackend, "score", score)
    return seen


def test_each_row_is_the_score_of_its_prompt(llm, tiny_gpt2_path):
    gold = [LABELS[i % 3] for i in range(len(PROMPTS))]
    table = llm.score_many_sync(PROMPTS, LABELS, gold=gold, cache=False, progress=False)
    assert len(table) == len(PROMPTS) and table.complete
    for prompt, result in zip(PROMPTS[-3:], table[-3:]):
        expected = [reference.continuation_logprob(tiny_gpt2_path, prompt, v) for v in LABELS]
        np.testing.assert_allclose(result.scores(), expected, atol=1e-4)
    frame = table.to_pandas()
    assert list(frame.columns) == ["prompt", *LABELS, "argmax", "gold", "correct"]
    assert list(frame["prompt"]) == PROMPTS
    np.testing.assert_allclose(frame[LABELS].sum(axis=1), 1.0)
    scores = np.array([r.scores() for r in table])
    assert list(frame["argmax"]) == [LABELS[i] for i in scores.argmax(1)]
    correct = [LABELS[i] == g for i, g in zip(scores.argmax(1), gold)]
    assert table.accuracy() == pytest.approx(sum(correct) / len(correct))
    confusion = table.confusion()
    assert confusion.values.sum() == len(PROMPTS)
    assert int(np.trace(confusion.values)) == sum(correct)


def test_one_list_of_values_per_prompt(llm):
    values = [[" a", " b"], [" France"], [" x", " y", " z"]]
    table = llm.score_many_sync(PROMPTS[:3], values, cache=False, progress=False)
    for prompt, row, result in zip(PROMPTS, values, table):
        assert result.continuations == row
        alone = llm.score_sync(prompt, row, cache=False).scores()
        np.testing.assert_allclose(result.scores(), alone, rtol=0, atol=1e-5)
    frame = table.to_pandas(probs=False)
    assert list(frame.columns[1:-1]) == [" a", " b", " France", " x", " y", " z"]
    assert np.isnan(frame.loc[0, " France"]) and frame.loc[1, " France"] == table[1].scores()[0]


@pytest.mark.parametrize("prompts, values, gold, error", [
    ("one prompt", LABELS, None, "prompts must be a list"),
    ([], LABELS, None, "prompts must not be empty"),
    (["a", 3], LABELS, None, r"prompts\[1\] must be a str"),
    (["a", "b"], [[" x"]], None, "values has 1 lists for 2 prompts"),
    (["a", "b"], [" x", [" y"]], None, "not a mix"),
    (["a", "b"], [], None, "values must not be empty"),
    (["a", "b"], LABELS, [" France"], "gold has 1 labels for 2 prompts"),
    (["a", "b"], LABELS, [" France", " Spain"], r"gold\[1\] is ' Spain'"),
])
def test_bad_arguments_fail_before_any_work(llm, monkeypatch, prompts, values, gold, error):
    seen = _in_flight(monkeypatch)
    with pytest.raises((TypeError, ValueError), match=error):
        llm.score_many_sync(prompts, values, gold=gold)
    with pytest.raises(TypeError, match="unknown option"):
        llm.score_many_sync(["a"], LABELS, temperature=1)
    assert seen["calls"] == 0


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_2000_rows_stream_within_a_memory_bound(llm, monkeypatch):
    """Never more than the window in flight, and the process grows by little more than
    the results: the rows are not all materialised at once."""
    llm.score_sync("warm", LABELS, cache=False)
    seen = _in_flight(monkeypatch)
    prompts = [f"Row {i}: the capital of" for i in range(2000)]
    before, peak, done = _resident_bytes(), [0], threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], _resident_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        table = llm.score_many_sync(prompts, LABELS, cache=False, progress=False)
    finally:
        done.set()
        sampler.join()
    assert table.complete and seen["calls"] == 2000
    assert seen["max"] <= llm.backend.score_window
    assert seen["max"] > 32  # enough in flight for the worker to batch
    assert peak[0] - before < 150 * 2**20, (peak[0] - before) / 2**20


def test_progress_bar_advances(llm, capsys):
    llm.score_many_sync(PROMPTS, LABELS, cache=False)
    err = capsys.readouterr().err
    assert "scoring:" in err and f"0/{len(PROMPTS)}" in err
    assert f"{len(PROMPTS)}/{len(PROMPTS)}" in err and "rows/s" in err


def _slow_rows(monkeypatch, started: threading.Event, delay: float = 0.02):
    """Each score call takes at least `delay` seconds; `started` is set once one ended."""
    original = InProcessBackend.score

    async def score(self, prompt, values, options):
        result = await original(self, prompt, values, options)
        await asyncio.sleep(delay)
        started.set()
        return result

    monkeypatch.setattr(InProcessBackend, "score", score)


def test_an_interrupt_returns_the_finished_rows(llm, monkeypatch):
    ended_one = threading.Event()
    _slow_rows(monkeypatch, ended_one, delay=0.2)
    monkeypatch.setattr(llm.backend, "score_window", 2)
    prompts = [f"Row {i}:" for i in range(200)]
    # a real SIGINT, as a notebook's stop button sends: it wakes the waiting main thread
    timer = threading.Thread(target=lambda: ended_one.wait(30)
                             and os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.warns(RuntimeWarning, match=r"\d+ of 200 rows are scored"):
        table = llm.score_many_sync(prompts, LABELS, cache=False, progress=False)
    timer.join()
    assert not table.complete and 0 < table.finished < 200
    for prompt, result in zip(prompts, table):
        if result is not None:
            np.testing.assert_allclose(result.scores(),
                                       llm.score_sync(prompt, LABELS, cache=False).scores(),
                                       rtol=0, atol=1e-5)
    frame = table.to_pandas()
    assert frame["argmax"].isna().sum() == 200 - table.finished


def test_cancelled_rows_are_kept_in_the_result_cache(llm, monkeypatch):
    """A cancelled async call raises; calling again computes only the unfinished rows."""
    ended_one = threading.Event()
    _slow_rows(monkeypatch, ended_one)
    prompts = [f"Cached row {i}:" for i in range(100)]
    monkeypatch.setattr(llm.backend, "score_window", 4)

    async def cancel_midway():
        task = asyncio.ensure_future(llm.score_many(prompts, LABELS, progress=False))
        while not ended_one.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    seen = _in_flight(monkeypatch)
    table = llm.score_many_sync(prompts, LABELS, progress=False)
    assert table.complete and 0 < seen["calls"] < 100


def test_a_failing_row_names_itself(llm):
    too_long = "word " * 400  # beyond the tiny model's 128 positions
    with pytest.raises(ValueError, match="context") as error:
        llm.score_many_sync(["short", too_long, "short too"], LABELS, cache=False,
                            progress=False)
    assert "while scoring prompts[1] of score_many" in error.value.__notes__


def test_the_module_level_functions_use_the_given_model(llm, tiny_gpt2_path):
    table = lmql_nb.score_many_sync(PROMPTS[:2], LABELS, model=f"local:{tiny_gpt2_path}",
                                    cache=False, progress=False)
    np.testing.assert_allclose([r.scores() for r in table],
                               [llm.score_sync(p, LABELS, cache=False).scores()
                                for p in PROMPTS[:2]], rtol=0, atol=1e-5)

    async def main():
        return await lmql_nb.score_many(PROMPTS[:2], LABELS, model=llm, progress=False)

    assert asyncio.run(main()).complete
