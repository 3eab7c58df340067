"""Torch-free scoring both halves share: entities and IOB2, output parsing, metrics, bench tables.

The launcher imports it in-process (`launch score`, `launch bench`); jobs import it on the node.

Modules:

- `bench`: The benchmark table, in the research's format: model, size, precision, recall, F1, level, notes.
- `bench_cls`: The classification benchmark table: dataset, level, shots, mode, model, top-1/3/5, ECE, p50
  latency.
- `classification`: Scoring text classification with confidence: top-k, P/R/F1, calibration, latency,
  hierarchy.
- `cls_match`: Turning a classifier's raw answer into ranked candidate codes: the research's matcher and a
  strict one.
- `entities`: Conversion between GMB IOB2 tags and the JSON entity target.
- `labels`: Label trees for text classification: flat (AG News) or hierarchical (the Dewey Decimal tree).
- `metrics`: Scoring generative NER: strict span P/R/F1, token level, sentence level, and the seed metric.
- `parse`: Lenient extraction of the ``{"entities": [...]}`` answer from a raw model generation.
- `plots`: The pictures `launch bench` and `launch compare` draw: F1 by checkpoint step, loss by step.
- `score`: `launch score`: score an existing predictions file without a model, as a table or JSON.
- `seed_cls`: `launch score --format seed-cls`: re-score the research's classification result CSVs.
- `tables`: Writing a table of dataclass rows as Markdown and CSV: the bench tables share this.
- `token_level`: Scoring of models that predict one IOB2 tag per word (spaCy, token classifiers).
"""
