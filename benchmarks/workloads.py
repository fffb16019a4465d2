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

# a nested-query program (issue 24): an inner chain-of-thought query, run twice in the
# outer prompt (its instructions hidden once it returns), then one outer hole; the same
# text for lmql_nb and LMQL 0.7.3 ({question} differs per run)
NESTED_INNER = '''
    "A: Let's think step by step.\\n[REASONING]" where len(TOKENS(REASONING)) < 9
    "So the answer is[ANSWER]" where len(TOKENS(ANSWER)) < 9
    return ANSWER.strip()
'''
NESTED_OUTER = '''
    "Q: {question}\\n"
    "Answer: [FIRST: think]\\n"
    "Q: And what is twice that?\\n"
    "Answer: [SECOND: think]\\n"
    "Final answer:[FINAL]" where len(TOKENS(FINAL)) < 9
    return FINAL
'''
NESTED_QUESTIONS = ["Q: {question}\nAnswer: ", "\nQ: And what is twice that?\nAnswer: "]

# a tool loop (issue 24): the model writes an expression, a Python calculator's result
# goes back into the prompt, four times, then the answer
TOOL_LOOP = '''
    "Q: {question}\\nLet's compute it step by step.\\n"
    for i in range(4):
        "Step {i + 1}:[EXPR]" where STOPS_AT(EXPR, "=") and len(TOKENS(EXPR)) < 9
        " {calc(EXPR)}\\n"
    "Answer:[ANSWER]" where len(TOKENS(ANSWER)) < 9
    return ANSWER
'''


def calc(expression: str) -> str:
    """The tool loop's calculator: the digits and operators of `expression`, evaluated
    (as LMQL's tools page does), or "?"."""
    import re

    kept = re.sub(r"[^0-9+\-*/().]", "", expression)
    try:
        return str(eval(kept, {"__builtins__": {}}))  # digits and operators only
    except Exception:
        return "?"
