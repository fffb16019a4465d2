"""The async core and its sync faces: event loops, threads, batching, cancellation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

import lmql_nb
from lmql_nb.backends.engine import worker

import reference
from installed import dev_package

PROMPTS = [f"Story {i}: once upon" for i in range(6)]


@pytest.fixture
def llm(tiny_gpt2_path):
    return lmql_nb.model(f"local:{tiny_gpt2_path}")


def _alone(llm, prompts):
    return [llm.generate_sync(p, max_tokens=10, cache=False) for p in prompts]


def _count_batches(monkeypatch) -> list:
    """Record the size of every group the worker hands to a runner."""
    sizes = []
    original = worker.ModelWorker._run

    def run(self, group):
        sizes.append(len(group))
        return original(self, group)

    monkeypatch.setattr(worker.ModelWorker, "_run", run)
    return sizes


def test_gather_batches_and_each_result_equals_the_call_alone(llm, tiny_gpt2_path, monkeypatch):
    alone = _alone(llm, PROMPTS)
    assert alone == [reference.greedy(tiny_gpt2_path, p, 10) for p in PROMPTS]
    sizes = _count_batches(monkeypatch)

    async def main():
        return await asyncio.gather(*[llm.generate(p, max_tokens=10, cache=False)
                                      for p in PROMPTS])

    assert asyncio.run(main()) == alone
    assert max(sizes) > 1  # the calls shared forward passes


def test_concurrent_scores_equal_scores_alone(llm):
    """Concurrent calls share forward passes (padded batches round differently, within
    1e-5; tests/test_score_batching.py has the rest)."""
    values = [[" France", " Paris"], [" a", " b", " c"], [" river"]]
    alone = [llm.score_sync("The capital of", v, cache=False).scores() for v in values]

    async def main():
        results = await asyncio.gather(*[llm.score("The capital of", v, cache=False)
                                         for v in values])
        return [r.scores() for r in results]

    for got, expected in zip(asyncio.run(main()), alone):
        assert got == pytest.approx(expected, abs=1e-5, rel=0)


def test_mixed_decoders_in_one_burst(llm):
    async def main():
        return await asyncio.gather(
            llm.generate("Once", max_tokens=5, cache=False),
            llm.generate("Once", max_tokens=5, decoder="sample", n=2, seed=1, cache=False),
            llm.generate("Once", max_tokens=5, decoder="beam", n=2, cache=False),
            llm.score("Once", [" upon"], cache=False))

    greedy, sampled, beams, scored = asyncio.run(main())
    assert greedy == llm.generate_sync("Once", max_tokens=5, cache=False)
    assert sampled == llm.generate_sync("Once", max_tokens=5, decoder="sample", n=2, seed=1,
                                        cache=False)
    assert beams == llm.generate_sync("Once", max_tokens=5, decoder="beam", n=2, cache=False)
    assert len(scored) == 1


def test_sync_from_many_threads(llm):
    alone = _alone(llm, PROMPTS)
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        results = list(pool.map(lambda p: llm.generate_sync(p, max_tokens=10, cache=False),
                                PROMPTS))
    assert results == alone


def test_repeated_asyncio_run(llm):
    expected = llm.generate_sync("Once", max_tokens=6, cache=False)
    for _ in range(3):
        assert asyncio.run(llm.generate("Once", max_tokens=6, cache=False)) == expected


def test_sync_inside_a_running_loop(llm):
    """What a Jupyter cell does: call a _sync function while an event loop runs."""
    expected = llm.generate_sync("Once", max_tokens=6, cache=False)

    async def cell():
        return llm.generate_sync("Once", max_tokens=6, cache=False)

    assert asyncio.run(cell()) == expected


def test_trio(llm):
    trio = dev_package("trio")
    expected = llm.generate_sync("Once", max_tokens=6, cache=False)
    scores = llm.score_sync("Once", [" upon", " a"], cache=False).scores().tolist()

    async def main():
        results = {}

        async def run(name, coroutine_function, *args, **kwargs):
            results[name] = await coroutine_function(*args, **kwargs)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "text", llm.generate, "Once", 6)
            nursery.start_soon(run, "scores", llm.score, "Once", [" upon", " a"])
        return results

    results = trio.run(main)
    assert results["text"] == expected
    assert results["scores"].scores().tolist() == scores


def test_curio(llm):
    curio = dev_package("curio")
    expected = llm.generate_sync("Once", max_tokens=6, cache=False)
    assert curio.run(llm.generate, "Once", 6) == expected


def test_cancelling_a_generation_stops_it_and_the_model_stays_usable(llm, monkeypatch):
    steps = []
    started = threading.Event()

    def on_token(index, token):
        steps.append(token)
        started.set()

    async def main():
        task = asyncio.create_task(llm.generate("Once", max_tokens=100_000, cache=False,
                                                on_token=on_token))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        generated_at_cancel = len(steps)
        await asyncio.sleep(0.2)
        return generated_at_cancel

    at_cancel = asyncio.run(main())
    assert len(steps) <= at_cancel + 1  # stopped within one decode step
    assert len(steps) < 120  # far from the 128-token context
    assert llm.generate_sync("Once", max_tokens=6, cache=False) == \
        reference.greedy(llm.backend.location(), "Once", 6)


def test_cancelling_under_trio(llm):
    trio = dev_package("trio")
    steps = []
    started = threading.Event()
    finished = []

    def on_token(index, token):
        steps.append(token)
        started.set()

    async def generate():
        finished.append(await llm.generate("Once", max_tokens=100_000, cache=False,
                                           on_token=on_token))

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(generate)
            while not started.is_set():  # cancel a generation that is under way
                await trio.sleep(0.001)
            nursery.cancel_scope.cancel()
        generated_at_cancel = len(steps)
        await trio.sleep(0.2)
        return generated_at_cancel

    at_cancel = trio.run(main)
    assert not finished  # cancelled, not completed
    assert 1 <= at_cancel and len(steps) <= at_cancel + 1  # stopped within one decode step
    assert len(steps) < 120  # far from the 128-token context
    assert llm.generate_sync("Once", max_tokens=6, cache=False) == \
        reference.greedy(llm.backend.location(), "Once", 6)
