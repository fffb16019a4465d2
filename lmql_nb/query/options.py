"""The keyword options a query call takes besides the program's own arguments (read by
the query functions, which check them, and by nested queries, which refuse them)."""

OPTIONS = ("model", "decoder", "n", "b", "k", "temperature", "top_k", "top_p", "seed", "max_len",
           "top_logprobs", "cache", "on_event", "verbose", "chunksize", "output_writer",
           "inputs", "certificate", "chunk_timeout", "openai_nonstop")

#: LMQL's runtime parameters for its OpenAI transport (language-decoding.md, "Runtime
#: Parameters"): accepted, with a warning that they change nothing in lmql_nb
TRANSPORT_OPTIONS = ("chunk_timeout", "openai_nonstop")
