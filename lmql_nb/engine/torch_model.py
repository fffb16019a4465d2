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
