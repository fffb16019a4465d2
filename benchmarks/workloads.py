"""The prompts and values every benchmark uses, so that all sides do the same work.

LONG_PROMPT is about 400 tokens of the embedded model (407 with BOS).
"""

PROMPT = "The capital of France is"
LONG_PROMPT = ("Here is a list of facts about European geography and history, one per line. "
               * 25).strip() + "\nThe capital of France is"
VALUES = [" Paris", " London", " Berlin", " Madrid", " Rome", " Vienna", " Lisbon",
          " a city", " not known", " the largest city in the country"]
CONCURRENT = [f"Write a short story about animal number {i}:" for i in range(8)]
