"""llguidance matchers for the decode loops: one per sequence, masks applied in place.

The tokenizer set-up (llguidance's view of a 262k vocabulary takes seconds) is made once
per tokenizer per process and reused; a `Constraint` is a spec compiled for one request
(milliseconds); each sequence of the request gets its own `SequenceMatcher`, and a beam
that forks copies its parent's.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Optional

import numpy as np

from ..errors import ConstraintError
from ..tokenization.tokenizer import EngineTokenizer
from .grammar import _detail, compile_grammar, parser_limits, shorten
from .spec import ConstraintSpec


class _Setup:
    """llguidance's tokenizer, and the masks that allow end-of-sequence alone, or nothing."""

    def __init__(self, tokenizer: EngineTokenizer):
        import llguidance

        self.llg = tokenizer.llguidance_tokenizer()
        ended = llguidance.LLMatcher(self.llg, llguidance.LLMatcher.grammar_from_regex(""))
        self.eos_only = ended.compute_bitmask()
        self.nothing = bytes(len(self.eos_only))
        self._pieces = frozenset(self.llg.decode_bytes([token])
                                 for token in range(self.llg.vocab_size)
                                 if not self.llg.is_special_token(token)) - {b""}
        self._longest = max(map(len, self._pieces), default=0)

    def spellable(self, text: str) -> bool:
        """True if some sequence of text tokens spells `text` exactly."""
        data = text.encode("utf-8")
        reached = [True] + [False] * len(data)
        for start in range(len(data)):
            if reached[start]:
                for end in range(start + 1, min(len(data), start + self._longest) + 1):
                    if not reached[end] and data[start:end] in self._pieces:
                        reached[end] = True
        return reached[-1]


_setups: "weakref.WeakKeyDictionary[EngineTokenizer, _Setup]" = weakref.WeakKeyDictionary()
_setups_lock = threading.Lock()


def tokenizer_setup(tokenizer: EngineTokenizer) -> _Setup:
    """The llguidance set-up of `tokenizer`, made on first use and kept while it lives."""
    with _setups_lock:
        setup = _setups.get(tokenizer)
        if setup is None:
            setup = _setups[tokenizer] = _Setup(tokenizer)
        return setup


class SequenceMatcher:
    """The constraint's state for one sequence.

    `blocked` is a bool array over the model's vocabulary, True for the tokens the
    constraint forbids next (replaced, never modified, so copies may share it);
    `forced_end` is True when the text is complete and nothing may follow it.
    """

    def __init__(self, matcher: Any, setup: _Setup, vocab_size: int):
        self._matcher = matcher
        self._setup = setup
        self._vocab_size = vocab_size
        self.blocked: np.ndarray
        self._allowed_ids: Optional[np.ndarray] = None
        self._blocked_ids: Optional[np.ndarray] = None
        self.forced_end = False
        self._update()

    @property
    def accepting(self) -> bool:
        """The text so far satisfies the constraint (the sequence may end here)."""
        return self._matcher.is_accepting()

    def mask_(self, logits: np.ndarray) -> None:
        """Set the forbidden tokens in a row of logits to -inf, in place.

        It writes the smaller of the two index sets (a few digits allowed, or a few
        special tokens blocked): tens of microseconds, where a boolean mask over a 262k
        vocabulary takes about a millisecond.
        """
        if self._allowed_ids is not None:
            kept = logits[self._allowed_ids]
            logits.fill(-np.inf)
            logits[self._allowed_ids] = kept
        else:
            logits[self._blocked_ids] = -np.inf

    def advance(self, token_id: int) -> None:
        """Consume `token_id` and compute the next mask; ConstraintError if it cannot."""
        if not self._matcher.consume_token(token_id):
            raise ConstraintError(f"the constraint engine failed after token {token_id}: "
                                  f"{_detail(self._matcher.get_error())}")
        self._update()

    def copy(self) -> "SequenceMatcher":
        """An independent copy (for a beam that forks); the current mask is shared."""
        clone = object.__new__(SequenceMatcher)
        clone.__dict__.update(self.__dict__)
        clone._matcher = self._matcher.deep_copy()
        return clone

    def _update(self) -> None:
        bits = self._matcher.compute_bitmask()
        if self._matcher.is_error():
            raise ConstraintError(f"the constraint engine failed: "
                                  f"{_detail(self._matcher.get_error())}")
        self.forced_end = bits == self._setup.eos_only
        # a dead end also offers end-of-sequence alone, but is not accepting
        if bits == self._setup.nothing or (self.forced_end and not self.accepting):
            raise ConstraintError("no token of this model continues the text in a way the "
                                  "constraint allows")
        if self.forced_end:
            return
        # zero-padded if the model has more logits than the tokenizer has tokens
        allowed = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=self._vocab_size,
                                bitorder="little")
        few_allowed = 2 * np.count_nonzero(allowed) <= self._vocab_size
        # bool views: numpy's nonzero is several times faster on bool than on uint8
        self._allowed_ids = np.flatnonzero(allowed.view(np.bool_)) if few_allowed else None
        blocked = allowed
        blocked ^= 1  # in place: a fresh vocabulary-sized array per token costs more
        self.blocked = blocked.view(np.bool_)
        self._blocked_ids = None if few_allowed else np.flatnonzero(blocked.view(np.bool_))


class Constraint:
    """A spec compiled for one tokenizer and model: `start()` gives each sequence its matcher.

    Building raises ValueError when the constraint admits no completion at all.
    """

    def __init__(self, spec: ConstraintSpec, tokenizer: EngineTokenizer, vocab_size: int):
        from llguidance import LLMatcher

        self.spec = spec
        setup = tokenizer_setup(tokenizer)
        matcher = LLMatcher(setup.llg, compile_grammar(spec), log_level=0,
                            limits=parser_limits())
        if matcher.is_error():
            raise ValueError(f"invalid constraint: {_detail(matcher.get_error())}")
        _check_spellable(spec, setup)
        try:
            self._initial = SequenceMatcher(matcher, setup, vocab_size)
        except ConstraintError as error:
            raise ValueError(f"no text satisfies these constraints (with this model's "
                             f"tokens): {error}") from None

    def start(self) -> SequenceMatcher:
        """A fresh matcher for one sequence."""
        return self._initial.copy()


def _check_spellable(spec: ConstraintSpec, setup: _Setup) -> None:
    """ValueError naming a choice that no sequence of this model's text tokens spells
    (a character the vocabulary lacks), before generation could walk into it."""
    for i, choice in enumerate(spec.choices or ()):
        if not setup.spellable(choice):
            raise ValueError(f"choices[{i}] {shorten(choice)} cannot be produced by this "
                             "model: its tokens cannot spell it (a character outside the "
                             "vocabulary?)")
