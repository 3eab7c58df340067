"""The data plane: the jobs the backends start on a cluster's nodes, `python -m jobs.<kind> --run-dir DIR`.

Each job kind is a package with a `__main__` and never imports another kind's modules; what several
kinds share lives in the modules beside them.

Job kinds:

- `train`: supervised fine-tuning for generative NER (fft, LoRA, QLoRA; DeepSpeed; axolotl).
- `evaluate`: generation and scoring of one checkpoint for generative NER (HF or vLLM engine).
- `token_classification`: the encoder baselines (ELECTRA, NuNER, MiniLM): train, then score.
- `spacy`: the spaCy NER baseline: resume a pretrained pipeline's NER training, then score.
- `classify`: text classification with confidence through an OpenAI-compatible API or a local model.
- `smoke`: a model-free stand-in for training (steps, checkpoints, resume, signals).
- `bench`: the benchmark table as a job (the logic is launcher.scoring.bench).

Shared helpers:

- `entry`: the start of every job: `--run-dir`, the recipe read and checked, the exit codes.
- `results`: what every evaluating kind writes: predictions.jsonl, metrics.json, their upload, W&B.
- `uploads`: the background uploader of a job's checkpoints and results to its artifact store.
- `wandb_run`: the W&B run of a job: mode, ids kept in launch.json, secrets redacted.
- `trainer`: the HF Trainer around a recipe (arguments, resume, results/train.json), for train and
  token_classification.
- `callbacks`: Trainer callbacks: COMPLETE markers, throughput, progress.json, SIGUSR2.
- `modeling`: loading tokenizers and models as a recipe says (dtype, quantization, LoRA, packaged models).
- `prompts`: the NER prompts and answers, for training and evaluation alike.
- `sft`: supervised fine-tuning data: loss on the answer only, packing.
- `engines`: the generation engines of jobs.evaluate (HF, vLLM).
- `data`: the datasets: GMB for NER, CSV items and label trees for classification.
- `tiny`: tiny random-weight models built locally for tests and the demo.
"""
