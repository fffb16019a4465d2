"""Tokenizer interfaces, incremental detokenisation, aligning tokenisations, and chat:
conversations through chat templates (`chat`), rendered sandboxed (`templates`)."""
