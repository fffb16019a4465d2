"""`compare`: one text under several models, token by token.

Each model reads the prompt and is then fed the continuation's tokens (its own
tokenisation, the joint one `score` uses), so every token gets that model's
log-probability, rank, entropy and top alternatives: the numbers `generate` reports for
a token it chose. Models whose tokenizers differ are aligned on character spans (see
`lmql_nb.tokenization.alignment`), and the result says so.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from ..core import aio
from ..tokenization.alignment import Segment, align, token_spans
from ..core.display_hooks import mimebundle
from ..core.options import check_prompt, check_values, parse_generate_options
from ..core.results import TokenInfo
from ..core.scoring import ScoringResult
from ..tokenization.tokenizer import split_continuation

if TYPE_CHECKING:
    from .llm import LLM

ModelLike = Union[str, "LLM"]


class Comparison:
    """A continuation's tokens under several models.

    Attributes:
        prompt, continuation: the texts compared.
        labels: one name per model (the model ids unless `labels=` was given).
        tokens: per model, its tokens of the continuation (`TokenInfo`: text, id,
            log-probability, rank, entropy, alternatives). A first token may include the
            prompt's tail where the model's tokenizer merges across the boundary.
        segments: the aligned pieces of text (`Segment`: start, end, each model's token
            indices), covering each character once; one token per model each when the
            tokenizers agree.
        same_tokens: True when every model cut the text into the same pieces.
    """

    def __init__(self, prompt: str, continuation: str, labels: Sequence[str],
                 tokens: Sequence[Sequence[TokenInfo]]):
        self.prompt = prompt
        self.continuation = continuation
        self.labels = list(labels)
        self.tokens = [tuple(t) for t in tokens]
        self.text = prompt + continuation
        self.segments: list[Segment] = align([[t.text for t in model] for model in self.tokens],
                                             len(self.text))
        self.same_tokens = all(all(len(ids) == 1 for ids in s.tokens) for s in self.segments)

    def segment_logprobs(self, model: int) -> list[float]:
        """Per segment, model `model`'s log-probability of it (the sum over its tokens)."""
        tokens = self.tokens[model]
        return [float(sum(tokens[i].logprob for i in s.tokens[model])) for s in self.segments]

    def differences(self, model: int = 1, base: int = 0) -> list[float]:
        """Per segment, model `model`'s log-probability minus model `base`'s: negative
        where `model` finds the text more surprising."""
        ours, theirs = self.segment_logprobs(model), self.segment_logprobs(base)
        return [a - b for a, b in zip(ours, theirs)]

    def totals(self) -> dict[str, float]:
        """Each model's log-probability of the whole continuation."""
        return {label: float(sum(t.logprob for t in tokens))
                for label, tokens in zip(self.labels, self.tokens)}

    def to_pandas(self) -> Any:
        """One row per token of the first model: its text and character span, a column
        named by each model's label with that model's log-probability, `rank <label>`,
        `difference <label>` (its log-probability minus the first model's, over the
        segment) and the segment index.

        Where tokenizers differ, another model's numbers sit on the last row of the
        aligned segment (the sum over its tokens there; rank only where it has a single
        token) and are NaN on the segment's other rows.
        """
        import pandas as pd

        first = self.tokens[0]
        spans = token_spans([t.text for t in first], len(self.text), self.segments[0].start)
        rows: list[dict[str, Any]] = [{} for _ in first]
        for index, segment in enumerate(self.segments):
            own = segment.tokens[0]
            for i in own:
                rows[i].update(token=first[i].text, start=spans[i][0], end=spans[i][1],
                               segment=index)
            if not own:
                continue
            last = own[-1]
            for m, label in enumerate(self.labels):
                ids = segment.tokens[m]
                for i in own:
                    rows[i].setdefault(label, math.nan)
                    rows[i].setdefault(f"rank {label}", math.nan)
                if m == 0:
                    for i in own:
                        rows[i][label] = first[i].logprob
                        rows[i][f"rank {label}"] = _rank(first[i])
                    continue
                total = float(sum(self.tokens[m][j].logprob for j in ids))
                rows[last][label] = total
                if len(ids) == 1:
                    rows[last][f"rank {label}"] = _rank(self.tokens[m][ids[0]])
                for i in own:
                    rows[i][f"difference {label}"] = math.nan
                rows[last][f"difference {label}"] = \
                    total - float(sum(first[i].logprob for i in own))
        frame = pd.DataFrame(rows)
        columns = ["token", "start", "end"] + [c for label in self.labels
                                               for c in (label, f"rank {label}")]
        columns += [f"difference {label}" for label in self.labels[1:]] + ["segment"]
        return frame[columns]

    def __repr__(self) -> str:
        totals = self.totals()
        lines = [f"lmql_nb.Comparison({len(self.labels)} models, "
                 f"{len(self.segments)} aligned segments"
                 f"{'' if self.same_tokens else '; tokenizers differ: aligned on character spans'}"
                 ")"]
        lines += [f"- {label}: {len(tokens)} tokens, total logprob {totals[label]:.2f}"
                  for label, tokens in zip(self.labels, self.tokens)]
        return "\n".join(lines)

    __str__ = __repr__

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook, the comparison view; `text/plain` stays the text form above."""
        return mimebundle(self)


def _rank(token: TokenInfo) -> float:
    return math.nan if token.rank is None else float(token.rank)


async def model_tokens(llm: "LLM", prompt: str, continuation: str, top_logprobs: int = 5,
                       cache: bool = True) -> tuple[TokenInfo, ...]:
    """`continuation`'s tokens under `llm` after `prompt`, with their numbers.

    Models that take token ids (in process, and servers such as `lmql_nb serve` and vLLM)
    are fed the tokens one by one (teacher forcing), which gives ranks and alternatives;
    other models give what `score` gives (log-probabilities only).
    """
    from ..backends.base import Backend

    backend = await llm._ready()
    if type(backend).generate_ids is not Backend.generate_ids:
        try:
            context, value = await aio.wait(aio.run_in_thread(
                split_continuation, backend.get_tokenizer(), prompt, continuation))
            options = parse_generate_options(len(value), return_details=True,
                                             top_logprobs=top_logprobs, cache=cache)
            generations = await backend.generate_ids(context, prompt, options,
                                                     forced_ids=value)
            return generations[0].tokens
        except NotImplementedError:  # this model takes no token-id prompts
            pass
    scored = await llm.score(prompt, continuation, cache=cache)
    return tuple(TokenInfo(token_id, text, float(logprob)) for token_id, text, logprob
                 in zip(scored.token_ids[0], scored.tokens[0], scored.token_scores[0]))


def _labels(llms: Sequence["LLM"], labels: Optional[Sequence[str]]) -> list[str]:
    if labels is None:
        names = [llm.model_identifier for llm in llms]
        if len(set(names)) < len(names):
            raise ValueError(f"two models have the same id ({names}); name them with "
                             "labels=[...], e.g. labels=['float32', 'bfloat16']")
        return names
    if (not isinstance(labels, (list, tuple)) or len(labels) != len(llms)
            or not all(isinstance(x, str) and x for x in labels)):
        raise ValueError(f"labels must be a list of {len(llms)} non-empty str, one per model; "
                         f"got {labels!r}")
    if len(set(labels)) < len(labels):
        raise ValueError(f"labels must differ from each other; got {labels!r}")
    return list(labels)


def resolve_models(models: Any) -> list["LLM"]:
    """`models` (ids or `LLM`s, a non-empty list) as `LLM`s."""
    from ..api import _as_llm

    if isinstance(models, str) or not isinstance(models, (list, tuple)) or not models:
        raise TypeError("models must be a non-empty list of model ids or lmql_nb.LLMs, e.g. "
                        "models=['local:gemma-3-270m', 'llama.cpp:gemma-3-270m']")
    return [_as_llm(m, f"models[{i}]") for i, m in enumerate(models)]


async def compare(prompt: str, continuation: str, models: Sequence[ModelLike], *,
                  labels: Optional[Sequence[str]] = None, top_logprobs: int = 5,
                  cache: bool = True) -> Comparison:
    """`continuation` after `prompt` under each of `models` (ids or `LLM`s), token by
    token: each model's log-probability, rank and alternatives, and the differences.

    Returns a `Comparison` (`to_pandas()` for the table; in a notebook, a view of the
    text coloured by the difference). Models whose tokenizers differ are aligned on
    character spans. `labels` names the models (default: their ids).
    """
    check_prompt(prompt)
    check_prompt(continuation, "continuation")
    if not continuation:
        raise ValueError("continuation must not be empty: it is the text compared")
    llms = resolve_models(models)
    names = _labels(llms, labels)
    parse_generate_options(top_logprobs=top_logprobs, cache=cache)  # checks both
    tokens = [await model_tokens(llm, prompt, continuation, top_logprobs, cache)
              for llm in llms]
    return Comparison(prompt, continuation, names, tokens)


def compare_sync(prompt: str, continuation: str, models: Sequence[ModelLike],
                 **kwargs: Any) -> Comparison:
    """Synchronous `compare`."""
    return aio.run_sync(compare, prompt, continuation, models, **kwargs)


class ScoreComparison:
    """The same values scored after one prompt by several models.

    `results[m]` is model m's own `ScoringResult`; `winners()` names each model's best
    value, `agree` says whether they all pick the same one. In a notebook it shows as one
    heatmap with a group of rows per model.
    """

    def __init__(self, labels: Sequence[str], results: Sequence[ScoringResult]):
        self.labels = list(labels)
        self.results = list(results)
        self.prompt = self.results[0].prompt
        self.continuations = self.results[0].continuations

    def winners(self, agg: str = "sum", alpha: float = 0.7) -> dict[str, str]:
        """Per model label, the value it scores highest."""
        return {label: result.argmax(agg, alpha)
                for label, result in zip(self.labels, self.results)}

    def agree(self, agg: str = "sum", alpha: float = 0.7) -> bool:
        """True when every model picks the same value."""
        return len(set(self.winners(agg, alpha).values())) == 1

    def to_pandas(self, agg: str = "sum", alpha: float = 0.7) -> Any:
        """One row per value: each model's aggregated score (a column named by its label)
        and probability across the values (`prob <label>`)."""
        import pandas as pd

        frame = pd.DataFrame({"value": self.continuations})
        for label, result in zip(self.labels, self.results):
            frame[label] = result.scores(agg, alpha)
            frame[f"prob {label}"] = result.probs(agg, alpha)
        return frame

    def __repr__(self) -> str:
        verdict = "the models agree" if self.agree() else "the models disagree"
        lines = [f"lmql_nb.ScoreComparison({len(self.labels)} models, "
                 f"{len(self.continuations)} values; {verdict})"]
        lines += [f"- {label}: {winner!r}" for label, winner in self.winners().items()]
        return "\n".join(lines)

    __str__ = __repr__

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        """In a notebook, one heatmap with a group of rows per model."""
        return mimebundle(self)


async def compare_scores(prompt: str, values: Union[str, list[str]],
                         models: Sequence[ModelLike], *,
                         labels: Optional[Sequence[str]] = None,
                         cache: bool = True) -> ScoreComparison:
    """`score(prompt, values)` under each of `models` (ids or `LLM`s): the compare form of
    `score`. Returns a `ScoreComparison` (winners per model, where they disagree)."""
    check_prompt(prompt)
    values = check_values(values)
    llms = resolve_models(models)
    names = _labels(llms, labels)
    results = [await llm.score(prompt, values, cache=cache) for llm in llms]
    return ScoreComparison(names, results)


def compare_scores_sync(prompt: str, values: Union[str, list[str]],
                        models: Sequence[ModelLike], **kwargs: Any) -> ScoreComparison:
    """Synchronous `compare_scores`."""
    return aio.run_sync(compare_scores, prompt, values, models, **kwargs)
