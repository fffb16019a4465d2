"""A transformers causal LM behind the engine's `LanguageModel` interface.

Rows are a batch dimension: prompts are left-padded, each row keeps its own positions
and attention mask, and the key/value cache is indexed when rows finish or beams fork.
transformers 5 renamed `past_key_values` to `cache` (in arguments and outputs); the
adapter finds out once which spelling the installed version uses. Inputs go to the
model's device; logits come back as float32 numpy arrays on the CPU.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import inspect
from typing import Any, Callable, Hashable, Iterator, Optional, Sequence

import numpy as np
import torch

from ..engine.model import LanguageModel, RowCallback, Rows, ScoreRow
from ..engine.prefix_cache import PrefixCache
from .projection import Projection, max_logits_from_env

#: the logits budget, in floats (default 2**26: 256 MiB; `$LMQL_NB_MAX_LOGITS` sets it):
#: a scoring pass projects its positions onto the vocabulary at most this many logits at
#: a time (`Projection`), whatever the prompt's length, and batches of scored suffixes
#: are sized by it
MAX_LOGITS_PER_BATCH = max_logits_from_env()
PREFIX_CACHE_BYTES = 512 * 2**20
# several score calls in one pass: their prompts' key/value cache, repeated per value,
# holds at most this many bytes, and the prompts' padded batch this many tokens
SCORE_CACHE_BYTES = 256 * 2**20
PREFILL_TOKENS = 8192


class TorchModel(LanguageModel):
    """Forward passes over a transformers model, as the decode and scoring loops need."""

    def __init__(self, model: Any, context_length: Optional[int], pad_token_id: int = 0):
        self.model = model
        self.context_length = context_length
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self.pad_token_id = pad_token_id
        self.device = getattr(model, "device", torch.device("cpu"))
        # (key/value cache, log-probabilities after it), never handed out uncopied
        self.prefixes: PrefixCache[tuple[Any, np.ndarray]] = PrefixCache(PREFIX_CACHE_BYTES)
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._token_bytes = _kv_bytes_per_token(model)
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
            else model.config
        self._softcap: Optional[float] = getattr(config, "final_logit_softcapping", None)
        self._projects_apart: Optional[bool] = None  # see `_projection_applies`

    # float32 batches with padding give each row its numbers alone up to rounding (1e-6)
    batches_calls = True
    scores_prefixes = True

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor, cache: Optional[Any] = None,
                last_only: bool = False,
                keep: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, Any]:
        """Run the model; return float32 logits and the updated cache.

        With `last_only`, logits are computed for the last position only (a prefill does
        not need the others, and the vocabulary projection is the costliest part). With
        `keep`, a boolean (rows, width) mask, only for the positions it marks (padding
        left out), returned as (1, marked positions in row order, vocabulary).
        """
        marked = None if keep is None else keep.to(self.device)
        output = self._run(input_ids, attention_mask, position_ids, cache, last_only,
                           None if marked is None else lambda states: states[marked][None])
        return output.logits.float(), self._new_cache(output)

    def _run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             position_ids: torch.Tensor, cache: Optional[Any], last_only: bool = False,
             head_input: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Any:
        """One forward pass (every pass goes through here); return the model's output.
        `head_input(states)` replaces what the output projection gets."""
        kwargs = {} if cache is None else {self._cache_argument: cache}
        handle = None
        if head_input is not None:
            handle = self.model.get_output_embeddings().register_forward_pre_hook(
                lambda module, args: (head_input(args[0]), *args[1:]))
        try:
            with torch.no_grad():  # not inference_mode: the cache is reordered outside
                return self.model(input_ids=input_ids.to(self.device),
                                  attention_mask=attention_mask.to(self.device),
                                  position_ids=position_ids.to(self.device), use_cache=True,
                                  logits_to_keep=1 if last_only else 0, **kwargs)
        finally:
            if handle is not None:
                handle.remove()

    def _new_cache(self, output: Any) -> Any:
        new_cache = getattr(output, self._cache_argument, None)
        return output.past_key_values if new_cache is None else new_cache

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      position_ids: torch.Tensor, keep: torch.Tensor,
                      cache: Optional[Any] = None) -> tuple[Projection, Any]:
        """Run the model; return the positions `keep` (a boolean (rows, width) mask)
        marks, in row order, as a `Projection` (their final hidden states, projected onto
        the vocabulary a chunk at a time within `MAX_LOGITS_PER_BATCH`), and the updated
        cache. The model's own projection gets one position (its output is dropped).
        A model whose logits are not its output embeddings' (plus Gemma's soft cap)
        gets its logits at the marked positions computed at once, as before."""
        if not self._projection_applies():
            logits, cache = self.forward(input_ids, attention_mask, position_ids, cache,
                                         keep=keep)
            return Projection(logits[0], lambda chunk: chunk, self.vocab_size,
                              MAX_LOGITS_PER_BATCH), cache
        captured: list[torch.Tensor] = []

        def one_position(states: torch.Tensor) -> torch.Tensor:
            captured.append(states)
            return states[:1, -1:]

        output = self._run(input_ids, attention_mask, position_ids, cache,
                           head_input=one_position)
        states = captured[0][keep.to(captured[0].device)]
        return Projection(states, self._project, self.vocab_size, MAX_LOGITS_PER_BATCH), \
            self._new_cache(output)

    def _project(self, states: torch.Tensor) -> torch.Tensor:
        """float32 logits of final hidden states (positions, hidden size), as the
        model's forward pass computes them: its output embeddings, then Gemma's soft cap
        where its config sets one."""
        with torch.no_grad():
            logits: torch.Tensor = self.model.get_output_embeddings()(states[None])[0]
            if self._softcap is not None:
                logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits.float()

    def _projection_applies(self) -> bool:
        """Whether `_project` gives the model's own logits: checked once, on a few
        tokens (a model may scale its logits after the projection, or not call it as a
        module); not on padding, whose embedding may be zero and its logits near zero."""
        if self._projects_apart is None:
            captured: list[torch.Tensor] = []
            handle = self.model.get_output_embeddings().register_forward_pre_hook(
                lambda module, args: captured.append(args[0]))
            probe = torch.arange(1, min(self.vocab_size, 9))[None]
            try:
                with torch.no_grad():
                    output = self.model(input_ids=probe.to(self.device), use_cache=False)
            finally:
                handle.remove()
            self._projects_apart = len(captured) == 1 and torch.allclose(
                self._project(captured[0][0]), output.logits[0].float(), rtol=1e-5, atol=1e-5)
        return self._projects_apart

    def prefill(self, ids: list[int], use_prefix_cache: bool = True) -> tuple[Any, np.ndarray]:
        """Run one sequence of token ids; return its key/value cache and the
        log-probabilities after it. Only the tokens no cached prefix covers are computed,
        and the result is cached for later calls (unless `use_prefix_cache` is False)."""
        key = tuple(ids)
        known, state = self.prefixes.longest(key) if use_prefix_cache else (0, None)
        cache, logprobs = (None, None) if state is None else (copy.deepcopy(state[0]), state[1])
        if known < len(ids):
            new = torch.tensor([ids[known:]])
            mask = torch.ones((1, len(ids)), dtype=torch.long)
            positions = torch.arange(known, len(ids))[None, :]
            logits, cache = self.forward(new, mask, positions, cache, last_only=True)
            logprobs = logits[0, -1].log_softmax(-1).cpu().numpy()
            size = _cache_bytes(cache)
            if use_prefix_cache and key not in self.prefixes and size <= self.prefixes.max_size:
                self.prefixes.put(key, (copy.deepcopy(cache), logprobs), size)
        assert logprobs is not None  # computed above, or the cached state of all of `ids`
        return cache, logprobs

    def start(self, prompts: Sequence[Sequence[int]], use_prefix_cache: bool = True,
              groups: Optional[Sequence[Hashable]] = None,
              continuations: Optional[Sequence[Optional[int]]] = None
              ) -> tuple["TorchRows", np.ndarray]:
        """One row per prompt. When all prompts are one (one request, or requests for one
        prompt), it runs once, through the prefix cache, and its state is repeated;
        otherwise the prompts run together, left-padded. All groups share each forward
        pass: padded float batches give every row what it gets alone (the tests check).
        Continuation blocks need nothing: the prefix cache continues any prefix."""
        rows = len(prompts)
        if len({tuple(ids) for ids in prompts}) == 1:
            ids = list(prompts[0])
            cache, logprobs = self.prefill(ids, use_prefix_cache)
            if rows > 1:
                cache.batch_repeat_interleave(rows)
            attention_mask = torch.ones((rows, len(ids)), dtype=torch.long)
            positions = torch.full((rows,), len(ids) - 1)
            # a copy: the caller masks it in place, and `logprobs` may be cached
            return (TorchRows(self, cache, attention_mask, positions),
                    np.repeat(logprobs[None, :], rows, 0))
        input_ids, attention_mask, positions = left_pad([list(p) for p in prompts],
                                                        self.pad_token_id)
        logits, cache = self.forward(input_ids, attention_mask, positions, last_only=True)
        return TorchRows(self, cache, attention_mask, positions[:, -1]), _numpy(logits[:, -1, :])

    def suffix_logprobs(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                        use_prefix_cache: bool = True,
                        cancelled: Callable[[], bool] = lambda: False,
                        on_row: Optional[RowCallback] = None,
                        continuation: Optional[int] = None) -> list[list[float]]:
        """The prefix runs once; its cache is repeated for batches of suffixes, which run
        together (right-padded, with an attention mask over prefix + suffix). A one-token
        suffix needs nothing but the prefix's log-probabilities."""
        prefix_cache, first_logprobs = self.prefill(list(prefix), use_prefix_cache)
        results: list[list[float]] = [[float(first_logprobs[s[0]])] if len(s) == 1 else []
                                      for s in suffixes]
        if on_row is not None:
            for i, suffix in enumerate(suffixes):
                if len(suffix) == 1:
                    on_row(i, 0, first_logprobs)
        longest = max(len(s) for s in suffixes)
        per_batch = max(1, MAX_LOGITS_PER_BATCH // (self.vocab_size * longest))
        order = sorted((i for i in range(len(suffixes)) if len(suffixes[i]) > 1),
                       key=lambda i: len(suffixes[i]))
        for start in range(0, len(order), per_batch):
            if cancelled():
                raise concurrent.futures.CancelledError()
            chunk = order[start:start + per_batch]
            with self.interruptible(cancelled):
                scored = self._score_batch(len(prefix), [suffixes[i] for i in chunk],
                                           prefix_cache, first_logprobs,
                                           None if on_row is None else _rows_of(chunk, on_row))
            for i, values in zip(chunk, scored):
                results[i] = values
        return results

    @contextlib.contextmanager
    def interruptible(self, cancelled: Callable[[], bool]) -> Iterator[None]:
        """Forward passes inside stop with CancelledError at the next decoder layer (or
        before the vocabulary projection) once `cancelled()`: a batch of hundreds of
        scored values takes seconds, and the next call should not wait for all of it."""
        def check(*_: Any) -> None:
            if cancelled():
                raise concurrent.futures.CancelledError()

        handles = [module.register_forward_pre_hook(check) for module in self._stages()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _stages(self) -> list[Any]:
        """The decoder layers (the model's first ModuleList) and the output projection."""
        layers: Any = next((m for m in self.model.modules()
                            if isinstance(m, torch.nn.ModuleList)), [])
        return [*layers, self.model.get_output_embeddings()]

    def _score_batch(self, prefix_length: int, suffixes: Sequence[Sequence[int]],
                     prefix_cache: Any, first_logprobs: np.ndarray,
                     on_row: Optional[RowCallback] = None) -> list[list[float]]:
        width = max(len(s) for s in suffixes)
        input_ids = torch.zeros((len(suffixes), width), dtype=torch.long)
        mask = torch.zeros((len(suffixes), prefix_length + width), dtype=torch.long)
        mask[:, :prefix_length] = 1
        for row, suffix in enumerate(suffixes):
            input_ids[row, :len(suffix)] = torch.tensor(suffix)
            mask[row, prefix_length:prefix_length + len(suffix)] = 1
        positions = torch.arange(prefix_length, prefix_length + width)[None, :].expand(
            len(suffixes), -1)
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(suffixes))
        # a token's log-probability is read from the position before it: the first from
        # the prefix's, the others from the suffix's positions but its last
        keep = torch.zeros((len(suffixes), width), dtype=torch.bool)
        for row, suffix in enumerate(suffixes):
            keep[row, :len(suffix) - 1] = True
        projection, _ = self.hidden_states(input_ids, mask, positions, keep, cache)
        results = [[float(first_logprobs[suffix[0]])] for suffix in suffixes]
        if on_row is not None:
            for row in range(len(suffixes)):
                on_row(row, 0, first_logprobs)
        kept = [(row, position) for row, suffix in enumerate(suffixes)
                for position in range(1, len(suffix))]
        for start, table in projection.log_softmax():
            for (row, position), before in zip(kept[start:], table):
                results[row].append(float(before[suffixes[row][position]]))
                if on_row is not None:
                    on_row(row, position, before)
        return results


    def rows_fit(self, rows: Sequence[ScoreRow], score_prefix: bool = False) -> bool:
        """Within the logits, key/value cache and prefill budgets (see the constants)."""
        prefixes = {row.prefix for row in rows}
        width = max(len(prefix) for prefix in prefixes)
        tail = max(len(row.suffix) for row in rows) - 1
        if score_prefix and len(prefixes) * width * self.vocab_size > MAX_LOGITS_PER_BATCH:
            return False
        return (len(prefixes) * width <= PREFILL_TOKENS
                and len(rows) * tail * self.vocab_size <= MAX_LOGITS_PER_BATCH
                and len(rows) * (width + tail) * self._token_bytes <= SCORE_CACHE_BYTES)

    def score_rows(self, rows: Sequence[ScoreRow],
                   score_prefix: bool = False) -> list[list[float]]:
        """The rows' prompts run together, left-padded (the first value token's
        log-probability comes from there, and with `score_prefix` those of the prompts'
        own tokens); then the rows' other suffix tokens run in one pass on the prompts'
        cache, repeated per row, right-padded. A suffix's last token needs no pass of
        its own: one-token values cost only the prompt pass."""
        index_of: dict[tuple[int, ...], int] = {}
        for row in rows:
            index_of.setdefault(row.prefix, len(index_of))
        input_ids, mask, positions = left_pad([list(p) for p in index_of], self.pad_token_id)
        of_row = torch.tensor([index_of[row.prefix] for row in rows])
        heads: list[list[float]] = [[] for _ in index_of]
        if score_prefix:  # the prompts' own positions, padding left out
            projection, cache = self.hidden_states(input_ids, mask, positions, mask.bool())
            tokens = input_ids[mask.bool()]
            ends = torch.tensor([len(p) for p in index_of]).cumsum(0) - 1
            # position j predicts the token at j + 1 (meaningless at each prompt's end)
            table = projection.take(torch.arange(len(tokens) - 1)).token_logprobs(tokens[1:])
            heads = [table[end - len(prefix) + 1:end].tolist() for end, prefix
                     in zip(ends.tolist(), index_of)]
            lasts = projection.take(ends)
        else:
            last = torch.zeros_like(mask, dtype=torch.bool)
            last[:, -1] = True
            lasts, cache = self.hidden_states(input_ids, mask, positions, last)
        firsts = [0.0] * len(rows)
        owner = of_row.tolist()
        for start, first in lasts.log_softmax():  # each prompt's last position
            for i, row in enumerate(rows):
                if start <= owner[i] < start + len(first):
                    firsts[i] = float(first[owner[i] - start, row.suffix[0]])
        results = [heads[int(of_row[i])] + [firsts[i]] for i in range(len(rows))]
        longer = [i for i, row in enumerate(rows) if len(row.suffix) > 1]
        if not longer:
            return results
        width = max(len(rows[i].suffix) for i in longer) - 1
        inputs = torch.zeros((len(longer), width), dtype=torch.long)
        targets = torch.zeros((len(longer), width), dtype=torch.long)
        tail_mask = torch.zeros((len(longer), width), dtype=torch.long)
        for k, i in enumerate(longer):
            suffix = rows[i].suffix
            inputs[k, :len(suffix) - 1] = torch.tensor(suffix[:-1])
            targets[k, :len(suffix) - 1] = torch.tensor(suffix[1:])
            tail_mask[k, :len(suffix) - 1] = 1
        owners = of_row[longer]
        cache.reorder_cache(owners)  # index_select: a prompt's cache once per row
        prompt_lengths = mask.sum(-1)[owners]
        projection, _ = self.hidden_states(
            inputs, torch.cat([mask[owners], tail_mask], -1),
            prompt_lengths[:, None] + torch.arange(width)[None, :], tail_mask.bool(), cache)
        scores = projection.token_logprobs(targets[tail_mask.bool()]).tolist()
        done = 0
        for i in longer:
            count = len(rows[i].suffix) - 1
            results[i] += scores[done:done + count]
            done += count
        return results


class TorchRows(Rows):
    """Rows as a batch dimension of a key/value cache, with their masks and positions."""

    def __init__(self, model: TorchModel, cache: Any, attention_mask: torch.Tensor,
                 positions: torch.Tensor):
        self.model = model
        self.cache = cache
        self.attention_mask = attention_mask
        self.positions = positions  # of each row's last token

    def step(self, token_ids: Sequence[int]) -> np.ndarray:
        rows = len(token_ids)
        self.attention_mask = torch.cat(
            [self.attention_mask, self.attention_mask.new_ones((rows, 1))], -1)
        self.positions = self.positions + 1
        logits, self.cache = self.model.forward(torch.tensor(token_ids)[:, None],
                                                self.attention_mask, self.positions[:, None],
                                                self.cache)
        return _numpy(logits[:, -1, :])

    def keep(self, rows: Sequence[int]) -> None:
        if list(rows) == list(range(len(self.positions))):
            return
        index = torch.tensor(rows, dtype=torch.long)
        self.cache.reorder_cache(index)  # index_select: a row named twice is copied
        self.attention_mask = self.attention_mask[index]
        self.positions = self.positions[index]


def left_pad(sequences: list[list[int]],
             pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad token lists into (input_ids, attention_mask, position_ids)."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            input_ids[row, width - len(sequence):] = torch.tensor(sequence)
            attention_mask[row, width - len(sequence):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, attention_mask, position_ids


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 CPU tensor's numpy view (the tensor is fresh: nothing else holds it)."""
    return tensor.cpu().numpy()


def _kv_bytes_per_token(model: Any) -> int:
    """Bytes one token takes in the model's key/value cache (from its config)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = next(model.parameters()).element_size()
    return int(2 * config.num_hidden_layers * kv_heads * head_dim * element)


def _cache_bytes(cache: Any) -> int:
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def _rows_of(chunk: Sequence[int], on_row: RowCallback) -> RowCallback:
    """`on_row` for a batch of `chunk`'s rows, reporting each row's index in the call."""
    return lambda row, j, logprob: on_row(chunk[row], j, logprob)
