"""The Generations API's objects: `LLM`, the result cache, `score_many`, comparison."""
