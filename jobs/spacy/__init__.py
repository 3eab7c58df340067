"""The `spacy` job kind: the spaCy NER baseline (`python -m jobs.spacy --run-dir DIR`).

Modules:

- `job`: spaCy NER baseline: resume training of a pretrained pipeline's NER on GMB, then score it
  (launcher.scoring.token_level; results through jobs.results).
"""
