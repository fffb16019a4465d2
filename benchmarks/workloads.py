"""The prompts and values every benchmark uses, so that all sides do the same work.

LONG_PROMPT is about 400 tokens of the embedded model (407 with BOS).
"""

PROMPT = "The capital of France is"
LONG_PROMPT = ("Here is a list of facts about European geography and history, one per line. "
               * 25).strip() + "\nThe capital of France is"
VALUES = [" Paris", " London", " Berlin", " Madrid", " Rome", " Vienna", " Lisbon",
          " a city", " not known", " the largest city in the country"]
CONCURRENT = [f"Write a short story about animal number {i}:" for i in range(8)]

# a chain-of-thought query program: 4 holes of (up to) 8 tokens and a 3-value distribution,
# written once for lmql_nb and LMQL 0.7.3 alike ({question} differs per run)
QUERY = '''argmax
    "Q: {question}\\n"
    "A: Let's think step by step.\\n"
    "First,[STEP1]" where len(TOKENS(STEP1)) < 9
    "\\nThen,[STEP2]" where len(TOKENS(STEP2)) < 9
    "\\nSo,[STEP3]" where len(TOKENS(STEP3)) < 9
    "\\nThus, the answer is[ANSWER]" where len(TOKENS(ANSWER)) < 9
    "\\nIs this answer right?[CHECK]"
distribution
    CHECK in [" yes", " no", " maybe"]
'''
QUERY_QUESTION = "Anna has {n} apples and buys 3 more. How many apples does she have now?"
QUERY_STEPS = ["First,", "\nThen,", "\nSo,", "\nThus, the answer is"]
QUERY_CHECK = ("\nIs this answer right?", [" yes", " no", " maybe"])

# classification at dataset scale: short reviews of varied length against three labels
SENTIMENTS = [" positive", " negative", " neutral"]
_OPINIONS = ["The food was great", "The service was slow and the room was cold",
             "Nothing special, an ordinary place", "I loved every minute of it",
             "Terrible, we left after ten minutes", "The staff were friendly but the view was not"]


def reviews(n: int) -> list[str]:
    """`n` distinct short review prompts (about 15-30 tokens each)."""
    return [f"Review {i}: {_OPINIONS[i % len(_OPINIONS)]}"
            f"{', really' * (i % 4)}.\nSentiment:" for i in range(n)]
