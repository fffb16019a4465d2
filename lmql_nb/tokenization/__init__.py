"""Tokenizer interfaces, incremental detokenisation, aligning tokenisations."""
