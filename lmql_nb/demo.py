"""`lmql.demo`: demonstration data for LMQL's documented examples.

`gsm8k_samples()` gives few-shot demonstrations of grade-school maths word problems in
the form the calculator example of LMQL's tool-use page primes a model with: reasoning
in which each calculation is written `<<expression=result>>`, then "So the answer is N."
(the examples are lmql_nb's own, written in GSM8K's annotation style).
"""

from __future__ import annotations

SAMPLES = [
    ("Mia buys 3 notebooks for $4 each and a pen for $2. How much does she spend?",
     "The notebooks cost 3 * 4 = <<3*4=12>>12 dollars.\n"
     "With the pen she spends 12 + 2 = <<12+2=14>>14 dollars.\n"
     "So the answer is 14."),
    ("A train travels 60 km per hour for 2.5 hours. How far does it go?",
     "It travels 60 * 2.5 = <<60*2.5=150>>150 km.\n"
     "So the answer is 150."),
    ("Tom had 48 apples and gave a quarter of them away. How many does he have left?",
     "He gave away 48 / 4 = <<48/4=12>>12 apples.\n"
     "He has 48 - 12 = <<48-12=36>>36 apples left.\n"
     "So the answer is 36."),
]


def gsm8k_samples(n: int = len(SAMPLES)) -> str:
    """The first `n` demonstrations as one prompt text: "Q: ...\\nA: Let's think step by
    step.\\n<reasoning>\\n\\n" each (see the module doc)."""
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= len(SAMPLES):
        raise ValueError(f"n must be an int from 0 to {len(SAMPLES)}, got {n!r}")
    return "".join(f"Q: {question}\nA: Let's think step by step.\n{answer}\n\n"
                   for question, answer in SAMPLES[:n])
