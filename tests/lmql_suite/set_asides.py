"""LMQL's tests whose assertion is one particular model's text, test by test.

LMQL's suite runs on its seeded `random` model (a random-token generator), GPT-2 and a
Llama-2 7B GGUF; some assertions compare the output with the exact text that model gave.
With the model swapped (lmql_shim.SWAPS) such an assertion cannot hold. Each is listed
here with a substring of its failure message: the test still runs unchanged and passes
only if that assertion is what fails (everything before it held). `property` says what
the test checks beyond the text, and `restated` names the test in `test_restated.py`
that checks that property on the embedded Gemma.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SetAside:
    line: int  # the line of the model-text assertion in the upstream file
    expect: str  # a substring of its failure message
    property: str  # what the test checks, beyond the one model's text
    restated: str  # the test in test_restated.py that checks it on Gemma


RANDOM = "Expected fixed random value"
DECORATORS = "test_decorators_see_the_variable_its_stream_and_its_value"
NESTED = "test_nested_queries_continue_the_outer_prompt"
TOKENIZERS = "test_models_with_different_tokenizers_in_one_process"
STOPPING = "test_stopping_phrases_and_length_bounds"

SET_ASIDES: dict[str, SetAside] = {
    "test_back2back_caching.py::<module>": SetAside(
        31, "Expected 2 generate calls",
        "three holes back to back fill in turn, each call in the certificate (the count of "
        "2 is of LMQL's own model protocol, lmtp)", "test_back_to_back_holes_are_recorded_call_by_call"),
    "test_decorators.py::test_decorators": SetAside(
        39, "expected stream_input to be fixed token sequence",
        "pre, streaming and post decorators see the variable, its prefixes, its value", DECORATORS),
    "test_decorators.py::test_inner_decorator": SetAside(
        64, "expected post_input to be 'AMEtemplate",
        "a post decorator's return replaces the value and the prompt's text", DECORATORS),
    "test_decorators.py::test_streaming_decorator": SetAside(
        80, "expected incremental stream of RESPONSE",
        "a streaming decorator sees each prefix of the value as it grows", DECORATORS),
    "test_escaping.py::test_curly_braces": SetAside(
        11, "Got { Say [abc] 'this is a test':",
        "{{ }} give braces, {value} interpolates bracketed text as text",
        "test_curly_escapes_and_interpolation"),
    "test_multi_tokenizer.py::test_random_gpt": SetAside(
        15, "Expected 'saf steppingattery clutch', got",
        "a hole of exactly 4 of the model's tokens", TOKENIZERS),
    "test_multi_tokenizer.py::test_random_llama": SetAside(
        26, "Expected 'jlhidePhotoSR', got",
        "the same with a model whose tokenizer differs, in the same process", TOKENIZERS),
    "test_multi_tokenizer.py::test_llama_from_gpt": SetAside(
        26, "Expected 'jlhidePhotoSR', got",
        "a query on one model calls an async query on another without await (LMQL awaits "
        "calls in programs); the inner query's own text assertion is the one that fails",
        TOKENIZERS),
    "test_nested_queries.py::test_cot_fct": SetAside(
        15, RANDOM, "a nested query's value fills the hole, its prompt removed", NESTED),
    "test_nested_queries.py::test_no_return": SetAside(
        31, RANDOM, "a nested query without return inserts its prompt text",
        "test_nested_query_without_return_inserts_its_prompt"),
    "test_nested_queries.py::test_multi_nested": SetAside(
        45, RANDOM, "the same nested query three times, each on the prompt so far", NESTED),
    "test_nested_queries.py::test_one_of": SetAside(
        68, RANDOM, "a nested query with arguments picks among choices", NESTED),
    "test_nested_queries.py::test_nested_queries": SetAside(
        108, RANDOM, "a query method nesting another method", NESTED),
    "test_noprompt.py::test_noprompt": SetAside(
        15, RANDOM, "a program that is only a hole continues the empty prompt",
        "test_noprompt_hole_continues_the_empty_prompt"),
    "test_noprompt.py::test_noprompt_beam": SetAside(
        27, RANDOM, "beam(n=2) with no prompt gives two results, best first",
        "test_noprompt_beam_gives_two_ranked_results"),
    "test_return_value.py::test_nested_no_return_in_query": SetAside(
        72, "Expected return value to be 'None.' but got 'Hi,",
        "a nested query without return leaves its prompt in the outer one",
        "test_nested_query_without_return_inserts_its_prompt"),
    "test_stopping.py::test_stopping_single_match": SetAside(
        51, "Expected COMPL to be 'Peter\"'", "a kept stop phrase ends the value", STOPPING),
    "test_stopping.py::test_conditional_stopping": SetAside(
        63, "", "a stop phrase counts once the lower length bound holds", STOPPING),
    "test_stopping.py::test_double_stop_rewrite": SetAside(
        87, "", "of two stop phrases the first to occur ends the value", STOPPING),
    "test_stopping.py::test_stop_should_not_postprocess_if_sc_not_satisfied": SetAside(
        111, "Expected REVIEW to end with 'vendors'",
        "a stop phrase before the lower bound holds does not stop (the random model wrote "
        "'vendors'; Gemma never does and fills the context)", STOPPING),
    "test_stopping.py::test_stop_before_should_not_postprocess_if_sc_not_satisfied": SetAside(
        123, "Expected REVIEW to end with 'vendors'",
        "the same with STOPS_BEFORE", STOPPING),
}
