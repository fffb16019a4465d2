"""A thin adapter over a transformers causal LM: one forward call with a key/value cache.

transformers 5 renamed `past_key_values` to `cache` (in arguments and outputs); the
adapter finds out once which spelling the installed version uses.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import torch


class TorchModel:
    """Forward passes over a transformers model, as the decode and scoring loops need."""

    def __init__(self, model: Any, context_length: int):
        self.model = model
        self.context_length = context_length
        self.prefixes = PrefixCache()
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor, cache: Optional[Any] = None,
                last_only: bool = False) -> tuple[torch.Tensor, Any]:
        """Run the model; return float32 logits and the updated cache.

        With `last_only`, logits are computed for the last position only (a prefill does
        not need the others, and the vocabulary projection is the costliest part).
        """
        kwargs = {self._cache_argument: cache}
        if cache is None:
            kwargs = {}
        output = self.model(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids, use_cache=True,
                            logits_to_keep=1 if last_only else 0, **kwargs)
        new_cache = getattr(output, self._cache_argument, None)
        if new_cache is None:
            new_cache = output.past_key_values
        return output.logits.float(), new_cache

    def prefill(self, ids: list[int], use_prefix_cache: bool = True) -> tuple[Any, torch.Tensor]:
        """Run one sequence of token ids; return its key/value cache and the
        log-probabilities after it. Only the tokens no cached prefix covers are computed,
        and the result is cached for later calls (unless `use_prefix_cache` is False)."""
        key = tuple(ids)
        known, cache, logprobs = (self.prefixes.longest(key) if use_prefix_cache
                                  else (0, None, None))
        if known < len(ids):
            new = torch.tensor([ids[known:]])
            mask = torch.ones((1, len(ids)), dtype=torch.long)
            positions = torch.arange(known, len(ids))[None, :]
            logits, cache = self.forward(new, mask, positions, cache, last_only=True)
            logprobs = logits[0, -1].log_softmax(-1)
            if use_prefix_cache:
                self.prefixes.put(key, cache, logprobs)
        return cache, logprobs


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


class PrefixCache:
    """Key/value caches of recent prompts, least recently used first out, bounded in bytes.

    Scoring more values after a prompt it has seen, or after a longer prompt that starts
    with one, then costs only the new tokens. Entries are never handed out directly:
    callers get a copy to extend or repeat.
    """

    def __init__(self, max_bytes: int = 512 * 2**20):
        import collections

        self.max_bytes = max_bytes
        self._entries: "collections.OrderedDict[tuple, tuple[Any, torch.Tensor, int]]" = \
            collections.OrderedDict()
        self._bytes = 0

    def longest(self, ids: tuple) -> tuple[int, Optional[Any], Optional[torch.Tensor]]:
        """The longest cached prefix of `ids`: (its length, a copy of its cache, the
        log-probabilities after it); (0, None, None) when nothing matches."""
        import copy

        best = max((key for key in self._entries if len(key) <= len(ids) and ids[:len(key)] == key),
                   key=len, default=None)
        if best is None:
            return 0, None, None
        self._entries.move_to_end(best)
        cache, logprobs, _ = self._entries[best]
        return len(best), copy.deepcopy(cache), logprobs

    def put(self, ids: tuple, cache: Any, logprobs: torch.Tensor) -> None:
        import copy

        size = _cache_bytes(cache)
        if size > self.max_bytes or ids in self._entries:
            return
        self._entries[ids] = (copy.deepcopy(cache), logprobs, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


def _cache_bytes(cache: Any) -> int:
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total
