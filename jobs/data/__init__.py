"""The jobs' datasets (the shipped files are in `files/`).

Modules:

- `gmb`: the GMB NER corpus: loading, the research's split, a recipe's split and eval sentences.
- `ner`: the GMB split of a recipe as NER training examples (prompt + JSON answer).
- `classification`: classification items from a CSV, their label tree, a cell's sample and support.
"""
