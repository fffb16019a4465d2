"""A GGUF model run by llama.cpp (through llama-cpp-python's C API) as a `LanguageModel`.

Rows are llama.cpp sequences in one unified key/value cache: a row's tokens carry its
sequence id and positions, and `seq_cp` forks a row without copying tensors (cells are
shared between sequences).

llama.cpp's numbers on quantised models depend on how many rows a decode call holds:
its matrix kernels round differently for different row counts (measured on the Q4_K_M
Gemma with 0.3.36: a row decoded among 3 or 7 others moved by about 0.01 in its chosen
token's log-probability, up to 1.0 far in the tail, enough to change a greedy text; alike
for any mix of positions and prompts, with flash attention on or off, F16 or F32 cache).
So each step decodes each call's rows (a request's samples or beams) in their own
llama_decode, and a call's result never depends on what else runs at the same time.
Concurrent calls take turns within a step. In throughput mode (an option, off by
default) different calls share each llama_decode instead: faster, and each call's
numbers then depend on what runs beside it (about 0.01 for decode steps; up to about
0.4 for a prompt evaluated with other prompts, whose decode call then takes other
kernels: " Paris" -2.52 against -2.35 alone).

Cells are never freed one sequence at a time: a finished row's cells stay until the
call ends (the whole cache is cleared then) or until sequence ids run out (the live rows
are saved, the cache cleared, and the rows restored contiguously). Attention sums a
row's cells in cache order, so a token placed in a hole before older cells changes the
numbers (measured: 0.015 in a beam's fifth token). Recent prompts are kept as saved
sequence states and restored into a row when a later call has exactly that prompt.

Calls made in one continuation block (`lmql_nb.core.continuation`: a query program's
holes, its nested queries and tool loop) go further: each leaves its state (prompt and
the tokens fed after it), and the block's next call restores the state sharing the
longest start with its prompt, cuts it back to that start and decodes only the rest, as
`llama_cpp.Llama.generate` does with its previous tokens. Its numbers are then
llama.cpp's for the text in those pieces (the tests check them against `Llama.eval` of
the same pieces, and against an evaluation of the whole text within the split rounding).
Such states are kept apart per block (never used by a call outside it), never put in
the exact-prompt cache, and dropped once their block ends. Together they get room for
`CONTINUED_CONTEXTS` full contexts of the loaded model's key/value cells (at most
`CONTINUED_MEMORY_SHARE` of the memory available at load: `continued_budget`); a state
larger than that is not kept (the block's next call then reads its prompt from the last
state it shares a start with, or whole), and the model says so once, on the
`lmql_nb.backends.llamacpp.model` logger (level INFO).
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Hashable, Optional, Sequence

import numpy as np

from ...core import continuation as blocks
from ..engine.in_process import available_memory
from ..engine.model import LanguageModel, RowCallback, Rows, ScoreRow
from ..engine.prefix_cache import PrefixCache
from ..engine.sampling import log_softmax

# tokens per llama_decode call, and logits rows one call may return (a 262k vocabulary
# makes each row 1 MB)
BATCH_TOKENS = 512
MAX_OUTPUTS = 64
PREFIX_CACHE_BYTES = 256 * 2**20
#: the states left by calls in continuation blocks (a query run's holes), all blocks
#: together, get room for this many full contexts of the loaded model (the knob: a state
#: that does not fit is not kept, and the block's next call reads its prompt again)
CONTINUED_CONTEXTS = 2.0
#: ... but at most this share of the memory available when the model loads
CONTINUED_MEMORY_SHARE = 0.25
#: what a saved sequence state holds per token besides its key and value vectors (the
#: cell's position and sequence ids; measured with llama-cpp-python 0.3.36)
CELL_BYTES = 24
#: bytes per element of llama.cpp's default key/value cache type (F16)
KV_ELEMENT_BYTES = 2
# throughput-mode scoring: the logits of one chunk of rows, at most this many floats
MAX_SCORE_LOGITS = 1 << 26
# ggml's log levels (ggml.h): 3 warning, 4 error
_WARNING_LEVELS = (3, 4)

log = logging.getLogger(__name__)

_library_lock = threading.Lock()
_library_ready = False
_log_lines: "collections.deque[str]" = collections.deque(maxlen=20)


def llama_library() -> Any:
    """llama_cpp, initialised once, with its log sent to a short buffer instead of
    stderr (a notebook would show every load as a wall of red text)."""
    global _library_ready
    try:
        import llama_cpp
    except ImportError:
        raise ImportError("llama.cpp models need llama-cpp-python: "
                          "pip install 'lmql_nb[llamacpp]' (it compiles llama.cpp, about "
                          "10 minutes on 2 cores)") from None
    with _library_lock:
        if not _library_ready:
            llama_cpp.llama_log_set(_log_callback(llama_cpp), ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _library_ready = True
    return llama_cpp


_callback_reference: list[Any] = []  # the C callback must outlive every call into llama.cpp


def _log_callback(llama_cpp: Any) -> Any:
    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]  # a ctypes type
    def keep_errors(level: int, text: bytes, user_data: Any) -> None:
        if level in _WARNING_LEVELS:
            _log_lines.append(text.decode("utf-8", "replace").rstrip())

    _callback_reference.append(keep_errors)
    return keep_errors


def recent_log() -> str:
    """llama.cpp's latest warnings and errors (for error messages)."""
    return "; ".join(line for line in _log_lines if line)


def load_gguf(path: Path, gpu_layers: int = 0) -> Any:
    """A llama.cpp model pointer for the GGUF file at `path`."""
    llama_cpp = llama_library()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = gpu_layers
    _log_lines.clear()
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise ValueError(f"llama.cpp could not load {str(path)!r} as a GGUF model"
                         + (f": {recent_log()}" if recent_log() else ""))
    return model


def _metadata(llama_cpp: Any, model: Any, key: str) -> Optional[str]:
    """The GGUF metadata value under `key` as text (None: absent)."""
    buffer = ctypes.create_string_buffer(128)
    if llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, len(buffer)) < 0:
        return None
    return buffer.value.decode("utf-8", "replace")


def kv_bytes_per_token(llama_cpp: Any, model: Any) -> int:
    """The bytes one token takes in a saved sequence state of `model`: per layer, its key
    and value vectors for each key/value head (F16), and the cell's bookkeeping."""
    layers = llama_cpp.llama_model_n_layer(model)
    heads = max(1, llama_cpp.llama_model_n_head(model))
    kv_heads = llama_cpp.llama_model_n_head_kv(model)
    default = llama_cpp.llama_model_n_embd(model) // heads
    architecture = _metadata(llama_cpp, model, "general.architecture")
    lengths = []
    for kind in ("key", "value"):
        value = _metadata(llama_cpp, model, f"{architecture}.attention.{kind}_length")
        lengths.append(int(value) if value and value.isdigit() else default)
    return int(layers * kv_heads * sum(lengths) * KV_ELEMENT_BYTES + CELL_BYTES)


def continued_budget(bytes_per_token: int, context_tokens: int,
                     available: Optional[int] = None) -> int:
    """Bytes the continued states may take: `CONTINUED_CONTEXTS` contexts of
    `context_tokens` at `bytes_per_token`, at most `CONTINUED_MEMORY_SHARE` of
    `available` memory (None: as measured now; unknown: no cap)."""
    wanted = int(CONTINUED_CONTEXTS * context_tokens * bytes_per_token)
    available = available_memory() if available is None else available
    if available is None:
        return wanted
    return min(wanted, int(CONTINUED_MEMORY_SHARE * available))


class LlamaModel(LanguageModel):
    """A llama.cpp context over a loaded model, driven by the engine's worker thread.

    `context_tokens` key/value cells are shared by every sequence at once (rows being
    decoded and cached prompts; a prompt's cells are shared by the rows that continue
    it), so it is also the longest one sequence may grow. `sequences` bounds how many
    rows and cached prompts exist together.
    """

    def __init__(self, model: Any, context_tokens: int, threads: int, sequences: int,
                 throughput: bool = False, flash_attn: bool = False):
        self.llama = llama_library()
        # calls share decode calls (generation steps, score prompts and values)
        self.batches_calls = throughput
        self.model = model
        params = self.llama.llama_context_default_params()
        params.n_ctx = context_tokens
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = sequences
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = True  # sequences share cells: forks and cached prompts are free
        params.swa_full = True  # sliding-window layers keep every cell, so forks stay exact
        # flash attention as asked (1 on, 0 off; not llama.cpp's -1, "auto", which would
        # make the numbers depend on the machine)
        params.flash_attn_type = 1 if flash_attn else 0
        self.context = self.llama.llama_init_from_model(model, params)
        if not self.context:
            raise RuntimeError(f"llama.cpp could not create a context of {context_tokens} "
                               f"tokens: {recent_log() or 'out of memory?'}")
        self.memory = self.llama.llama_get_memory(self.context)
        self.vocab_size = self.llama.llama_vocab_n_tokens(self.llama.llama_model_get_vocab(model))
        self.context_length = self.llama.llama_n_ctx(self.context)
        self.sequences = sequences
        self.max_rows = sequences
        self._free = list(range(sequences - 1, -1, -1))
        self._live: set[int] = set()
        self._batch = self.llama.llama_batch_init(BATCH_TOKENS, 0, 1)
        # a prompt's saved sequence state, and the log-probabilities after it
        self.prefixes: PrefixCache[tuple[Any, np.ndarray]] = PrefixCache(PREFIX_CACHE_BYTES)
        # continuation blocks' states, keyed (block, *ids): a key shares a start only with
        # its own block's prompts; the log-probabilities after the ids where known
        self.token_bytes = kv_bytes_per_token(self.llama, model)
        self.continued: PrefixCache[tuple[Any, Optional[np.ndarray]]] = \
            PrefixCache(continued_budget(self.token_bytes, self.context_length))
        self._said_too_large = False

    # sequences ----------------------------------------------------------------------------

    def take(self) -> int:
        """A sequence id with no cells (compacting the cache if none is left)."""
        if not self._free:
            self._compact()
        if not self._free:
            raise RuntimeError(f"llama.cpp has no free sequence: more than {self.sequences} "
                               "rows at once; pass a larger parallel= to lmql_nb.model")
        sequence = self._free.pop()
        self._live.add(sequence)
        return sequence

    def release(self, sequence: int) -> None:
        """The row is done; its cells stay until the call ends (see the module doc)."""
        self._live.discard(sequence)
        if not self._live:
            self._clear()

    def fork(self, source: int) -> int:
        """A new sequence sharing all of `source`'s cells."""
        target = self.take()
        self.llama.llama_memory_seq_cp(self.memory, source, target, -1, -1)
        return target

    def _clear(self) -> None:
        # the cells only: their data is never read once they are free (zeroing a
        # context of 8192 tokens took about 6 ms, 5% of a short query)
        self.llama.llama_memory_clear(self.memory, False)
        self._free = [i for i in range(self.sequences - 1, -1, -1) if i not in self._live]

    def _compact(self) -> None:
        """Save the live sequences, clear the cache, restore them (contiguously)."""
        saved = {sequence: self._save(sequence) for sequence in self._live}
        self._clear()
        for sequence, state in saved.items():
            self._restore(state, sequence)

    def _save(self, sequence: int) -> Any:
        size = self.llama.llama_state_seq_get_size(self.context, sequence)
        state = (ctypes.c_uint8 * size)()
        self.llama.llama_state_seq_get_data(self.context, state, size, sequence)
        return state

    def _restore(self, state: Any, sequence: int) -> None:
        if not self.llama.llama_state_seq_set_data(self.context, state, len(state), sequence):
            raise RuntimeError("llama.cpp could not restore a sequence: its key/value cache "
                               f"({self.context_length} tokens) is full; pass a larger n_ctx=")

    # decoding -----------------------------------------------------------------------------

    def decode(self, tokens: Sequence[tuple[int, int, int, bool]]) -> np.ndarray:
        """Run (token, position, sequence, wants logits) items through the model; return
        the logits of the items that want them, in order, (outputs, vocab) float32."""
        outputs: list[np.ndarray] = []
        start = 0
        while start < len(tokens):
            # a chunk ends at BATCH_TOKENS items or MAX_OUTPUTS logits rows
            end, wanted = start, 0
            while end < len(tokens) and end - start < BATCH_TOKENS and wanted < MAX_OUTPUTS:
                wanted += tokens[end][3]
                end += 1
            outputs.append(self._decode_chunk(tokens[start:end], wanted))
            start = end
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _decode_chunk(self, tokens: Sequence[tuple[int, int, int, bool]],
                      wanted: int) -> np.ndarray:
        batch = self._batch
        batch.n_tokens = len(tokens)
        for i, (token, position, sequence, logits) in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = sequence
            batch.logits[i] = logits
        status = self.llama.llama_decode(self.context, batch)
        if status == 1:  # no room: drop the cells of finished rows
            self._compact()
            status = self.llama.llama_decode(self.context, batch)
        if status == 1:
            raise RuntimeError(
                f"llama.cpp's key/value cache is full: its {self.context_length} tokens are "
                "shared by all sequences decoded at once; pass a larger n_ctx= to "
                "lmql_nb.model, or fewer sequences")
        if status != 0:
            raise RuntimeError(f"llama.cpp failed to decode (status {status})"
                               + (f": {recent_log()}" if recent_log() else ""))
        if not wanted:
            return np.empty((0, self.vocab_size), dtype=np.float32)
        pointer = self.llama.llama_get_logits(self.context)
        copied: np.ndarray = np.ctypeslib.as_array(
            pointer, shape=(wanted, self.vocab_size)).copy()  # the buffer is llama.cpp's
        return copied

    def _prompt(self, ids: tuple[int, ...], use_prefix_cache: bool,
                continuation: Optional[int] = None) -> tuple[int, np.ndarray]:
        """A sequence holding `ids`, and the log-probabilities after them.

        Outside a continuation block, only a cached state of exactly these ids is reused:
        continuing a shorter cached prefix would split the prompt into other decode calls
        than running it whole, and change its numbers (see the module doc). So a call's
        result does not depend on which calls came before it. Inside one, the block's
        state sharing the longest start with `ids` is continued.
        """
        sequence = self.take()
        known = 0
        try:
            state = self.prefixes.get(ids) if use_prefix_cache else None
            if state is not None:
                self._restore(state[0], sequence)
                if continuation is not None:
                    self._keep(continuation, ids, state)
                return sequence, state[1]
            if use_prefix_cache and continuation is not None:
                known, key, kept = self.continued.closest((continuation, *ids))
                known = max(known - 1, 0)  # the block's key comes first
                if kept is not None and known == len(ids) == len(key or ()) - 1 \
                        and kept[1] is not None:
                    self._restore(kept[0], sequence)
                    return sequence, kept[1]
                known = min(known, len(ids) - 1)  # the last token's logits are needed
                if known and kept is not None:
                    self._restore(kept[0], sequence)
                    self.llama.llama_memory_seq_rm(self.memory, sequence, known, -1)
            logits = self.decode([(ids[position], position, sequence, position == len(ids) - 1)
                                  for position in range(known, len(ids))])
        except BaseException:
            self.release(sequence)
            raise
        logprobs = log_softmax(logits[0])
        if use_prefix_cache:
            saved = self._save(sequence)
            if not known:  # evaluated whole: any later call may use it
                self.prefixes.put(ids, (saved, logprobs), len(saved))
            if continuation is not None:
                self._keep(continuation, ids, (saved, logprobs))
        return sequence, logprobs

    def remember(self, sequence: int, ids: tuple[int, ...], continuation: int) -> None:
        """Keep `sequence` (holding `ids`) for the continuation block's later calls."""
        if (continuation, *ids) not in self.continued:
            self._keep(continuation, ids, (self._save(sequence), None))

    def _keep(self, continuation: int, ids: tuple[int, ...],
              state: tuple[Any, Optional[np.ndarray]]) -> None:
        """Keep a state for the block's later calls (dropping ended blocks' states); say
        once if one is too large to keep."""
        self.continued.drop(lambda key: not blocks.is_open(key[0]))
        size = len(state[0])
        if size > self.continued.max_size and not self._said_too_large:
            self._said_too_large = True
            log.info("lmql_nb: a query run's state of %d tokens (%.1f MiB) is not kept: "
                     "llama.cpp keeps %.1f MiB of them (%d tokens of this model; "
                     "CONTINUED_CONTEXTS=%g contexts, at most %g of the memory available "
                     "at load), so the run's next call reads its prompt again", len(ids),
                     size / 2**20, self.continued.max_size / 2**20,
                     self.continued.max_size // self.token_bytes, CONTINUED_CONTEXTS,
                     CONTINUED_MEMORY_SHARE)
        self.continued.put((continuation, *ids), state, size)

    def start(self, prompts: Sequence[Sequence[int]], use_prefix_cache: bool = True,
              groups: Optional[Sequence[Hashable]] = None,
              continuations: Optional[Sequence[Optional[int]]] = None
              ) -> tuple["LlamaRows", np.ndarray]:
        logits = np.empty((len(prompts), self.vocab_size), dtype=np.float32)
        rows = LlamaRows(self, [], [], [])
        try:
            first_of: dict[tuple[int, ...], int] = {}
            for i, prompt in enumerate(prompts):
                key = tuple(prompt)
                if key in first_of:  # the same prompt again: share its cells
                    sequence = self.fork(rows.sequences[first_of[key]])
                    logits[i] = logits[first_of[key]]
                else:
                    first_of[key] = i
                    sequence, logits[i] = self._prompt(
                        key, use_prefix_cache,
                        continuations[i] if continuations is not None else None)
                rows.sequences.append(sequence)
                rows.positions.append(len(prompt))
                # in throughput mode every row is in one group: calls share decode calls
                rows.groups.append(groups[i] if groups is not None and not self.batches_calls
                                   else None)
        except BaseException:
            rows.close()
            raise
        return rows, logits

    def suffix_logprobs(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]],
                        use_prefix_cache: bool = True,
                        cancelled: Callable[[], bool] = lambda: False,
                        on_row: Optional[RowCallback] = None,
                        continuation: Optional[int] = None) -> list[list[float]]:
        """The prefix runs once (or comes from the prefix cache, or continues its
        continuation block's state); each suffix runs in a fork of it, one llama_decode
        call per suffix: the split `Llama.eval` makes when it evaluates the prompt and
        then the value (see the module doc)."""
        import concurrent.futures

        base, first = self.start([prefix], use_prefix_cache, None, [continuation])
        results: list[list[float]] = []
        try:
            for i, suffix in enumerate(suffixes):
                if cancelled():
                    raise concurrent.futures.CancelledError()
                scores = [float(first[0, suffix[0]])]
                if on_row is not None:
                    on_row(i, 0, first[0])
                if len(suffix) > 1:  # a one-token value needs nothing but the prefix
                    fork = self.fork(base.sequences[0])
                    try:
                        # a token's log-probability comes from the logits before it: a
                        # suffix's last token needs none of its own
                        logits = self.decode([(token, len(prefix) + j, fork, j < len(suffix) - 1)
                                              for j, token in enumerate(suffix)])
                    finally:
                        self.release(fork)
                    logprobs = log_softmax(logits)
                    scores += [float(logprobs[j, token]) for j, token in enumerate(suffix[1:])]
                    if on_row is not None:
                        for j in range(len(suffix) - 1):
                            on_row(i, j + 1, logprobs[j])
                results.append(scores)
        finally:
            base.close()
        return results


    def rows_fit(self, rows: Sequence[ScoreRow], score_prefix: bool = False) -> bool:
        """Within the free sequences, the key/value cells and the logits budget."""
        prefixes = {row.prefix for row in rows}
        forks = sum(len(row.suffix) > 1 for row in rows)
        tails = sum(len(row.suffix) - 1 for row in rows)
        return (len(prefixes) + forks <= len(self._free)
                and sum(map(len, prefixes)) + tails <= (self.context_length or 0)
                and (len(prefixes) + tails) * self.vocab_size <= MAX_SCORE_LOGITS)

    def score_rows(self, rows: Sequence[ScoreRow],
                   score_prefix: bool = False) -> list[list[float]]:
        """Throughput mode: the rows' prompts in one decode call (one sequence each),
        then the rows' other suffix tokens in one decode call (a fork of its prompt
        each). The prefix cache is not used: its states were decoded in other company."""
        index_of: dict[tuple[int, ...], int] = {}
        for row in rows:
            index_of.setdefault(row.prefix, len(index_of))
        taken: list[int] = []
        try:
            items = []
            for prefix in index_of:
                taken.append(self.take())
                items += [(token, position, taken[-1], position == len(prefix) - 1)
                          for position, token in enumerate(prefix)]
            first = log_softmax(self.decode(items))
            results = [[float(first[index_of[row.prefix], row.suffix[0]])] for row in rows]
            longer = [i for i, row in enumerate(rows) if len(row.suffix) > 1]
            items = []
            for i in longer:
                row = rows[i]
                taken.append(self.fork(taken[index_of[row.prefix]]))
                items += [(token, len(row.prefix) + j, taken[-1], True)
                          for j, token in enumerate(row.suffix[:-1])]
            if items:
                logprobs = log_softmax(self.decode(items))
                offset = 0
                for i in longer:
                    suffix = rows[i].suffix
                    results[i] += [float(logprobs[offset + j, token])
                                   for j, token in enumerate(suffix[1:])]
                    offset += len(suffix) - 1
            return results
        finally:
            for sequence in taken:
                self.release(sequence)


class LlamaRows(Rows):
    """Rows as llama.cpp sequences, each with the position its next token takes and the
    group (call) it serves."""

    def __init__(self, model: LlamaModel, sequences: list[int], positions: list[int],
                 groups: list[Hashable]):
        self.model = model
        self.sequences = sequences
        self.positions = positions
        self.groups = groups

    def step(self, token_ids: Sequence[int]) -> np.ndarray:
        """One llama_decode call per group: its rows share it, whatever their positions
        (see the module doc for why groups never mix)."""
        logits = np.empty((len(token_ids), self.model.vocab_size), dtype=np.float32)
        members: dict[Hashable, list[int]] = {}
        for row, group in enumerate(self.groups):
            members.setdefault(group, []).append(row)
        for rows in members.values():
            logits[rows] = self.model.decode([(token_ids[row], self.positions[row],
                                               self.sequences[row], True) for row in rows])
        self.positions = [position + 1 for position in self.positions]
        return logits

    def remember(self, row: int, ids: Sequence[int], continuation: int) -> None:
        """Keep the row's state (the ids fed so far) for its continuation block."""
        self.model.remember(self.sequences[row], tuple(ids[:self.positions[row]]),
                            continuation)

    def keep(self, rows: Sequence[int]) -> None:
        if list(rows) == list(range(len(self.sequences))):
            return
        kept = set(rows)
        for i, sequence in enumerate(self.sequences):
            if i not in kept:  # released first, so forks can reuse the ids
                self.model.release(sequence)
        sequences, positions, groups, placed = [], [], [], set()
        for i in rows:
            sequences.append(self.sequences[i] if i not in placed else
                             self.model.fork(self.sequences[i]))
            positions.append(self.positions[i])
            groups.append(self.groups[i])
            placed.add(i)
        self.sequences, self.positions, self.groups = sequences, positions, groups

    def close(self) -> None:
        for sequence in self.sequences:
            self.model.release(sequence)
        self.sequences, self.positions, self.groups = [], [], []
