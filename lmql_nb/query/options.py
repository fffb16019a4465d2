"""The keyword options a query call takes besides the program's own arguments (read by
the query functions, which check them, and by nested queries, which refuse them)."""

OPTIONS = ("model", "decoder", "n", "b", "k", "temperature", "top_k", "top_p", "seed", "max_len",
           "top_logprobs", "cache", "on_event", "verbose", "chunksize", "output_writer",
           "inputs", "certificate")
