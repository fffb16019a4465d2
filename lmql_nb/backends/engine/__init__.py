"""The in-process engine shared by local backends: worker thread, batched decode,
beam search, scoring."""
