"""The `llama.cpp:` backend: a GGUF file run by llama.cpp in this process."""
