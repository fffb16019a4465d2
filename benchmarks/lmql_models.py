"""The LMQL 0.7.3 model a worker times (imported by the LMQL workers beside this file,
inside LMQL's environment only): the float32 transformers folder, or the same model's
GGUF through LMQL's own llama.cpp backend; LMQL's defaults either way.

For llama.cpp, `_adapt_llama_cpp_python()` adapts llama-cpp-python 0.3's `Llama.generate`
to the call LMQL 0.7.3's backend (lmql/models/lmtp/backends/llama_cpp_model.py) makes.
LMQL 0.7.3 was written against llama-cpp-python 0.2, whose `Llama.sample` called
`logits_processor(input_ids, logits)` on the score row of the position being sampled and
wrote the result back into that row (`logits[:] = logits_processor(self._input_ids,
logits)`), and whose `generate` then handed `stopping_criteria` that last row. The 0.2
series ended (0.2.90) before Gemma 3 existed, and 0.3 changed both calls:

- it iterates over `logits_processor` as a list and applies each to a copy of the
  candidates. LMQL passes one bare processor object, so 0.3 raises `TypeError:
  'BatchLogitsProcessor' object is not iterable` inside a ctypes callback, prints it and
  samples on: LMQL's constraint masks would silently not apply;
- it hands `stopping_criteria` the row `sample_idx - n_tokens` after incrementing
  `sample_idx`, i.e. row 0 (the first prompt position's logits) for every token; LMQL
  reads the scores it reports for each generated token from there.

The adapter wraps LMQL's bare processor into a one-element list whose processor also
writes its output into the sampled row of `Llama.scores`, and hands LMQL's
`stopping_criteria` that row, as 0.2 did. That is the whole change: LMQL's code, its
masks, its sampling settings and llama.cpp's computation are untouched. Where 0.3's
defaults differ from 0.2's they stand (`repeat_penalty` 1.0 instead of 1.1: LMQL passes
none, and without a penalty greedy decoding picks the most likely token, as lmql_nb does).
"""

import functools
import os
import time

import lmql


def model(folder, gguf=None):
    """LMQL's model, loaded in this process: the transformers folder `folder` on the CPU,
    or (given `gguf`) that GGUF file on llama.cpp with the folder's tokenizer."""
    if gguf is None:
        return lmql.model(f"local:{folder}", cuda=False)
    _adapt_llama_cpp_python()
    return lmql.model(f"local:llama.cpp:{gguf}", tokenizer=folder)


def cpu_seconds():
    """CPU seconds used so far by this process and its live descendants (LMQL runs its
    model in a child process), from /proc."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _descendants(pid):
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                children += [int(child) for child in listed.read().split()]
    except OSError:
        return []
    return children + [d for child in children for d in _descendants(child)]


def _adapt_llama_cpp_python():
    """Patch `llama_cpp.Llama.generate` as the module's docstring says (idempotent)."""
    import llama_cpp

    generate = llama_cpp.Llama.generate
    if getattr(generate, "adapted_for_lmql", False):
        return

    @functools.wraps(generate)
    def adapted(self, tokens, *args, logits_processor=None, stopping_criteria=None, **kwargs):
        if callable(logits_processor) and not isinstance(logits_processor, list):
            processor = logits_processor

            def in_place(input_ids, logits):
                processed = processor(input_ids, logits)
                self.scores[self.n_tokens - 1, :] = processed  # as 0.2's sample did
                return processed

            logits_processor = llama_cpp.LogitsProcessorList([in_place])
        if callable(stopping_criteria) and not isinstance(stopping_criteria, list):
            criteria = stopping_criteria

            def on_last_row(input_ids, _row_zero):
                return criteria(input_ids, self.scores[self.n_tokens - 1, :])  # as 0.2's

            stopping_criteria = on_last_row
        return generate(self, tokens, *args, logits_processor=logits_processor,
                        stopping_criteria=stopping_criteria, **kwargs)

    adapted.adapted_for_lmql = True
    llama_cpp.Llama.generate = adapted
