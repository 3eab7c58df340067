"""Tiny models built locally for tests and the demo (`python -m jobs.tiny build`).

Modules:

- `encoders`: Tiny encoders with random weights for the token-classification code paths, built locally.
- `models`: Tiny Qwen2- and Llama-4-architecture models with random weights and a tokenizer trained on GMB
  text.
"""
