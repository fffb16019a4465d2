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
    expect: str  # a substring of the message of the failing model-text assertion
    property: str  # what the test checks, beyond the one model's text
    restated: str  # the test in test_restated.py that checks it on Gemma


SET_ASIDES: dict[str, SetAside] = {
}
