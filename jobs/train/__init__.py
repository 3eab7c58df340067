"""The `train` job kind: supervised fine-tuning for generative NER (`python -m jobs.train --run-dir DIR`).

Modules:

- `axolotl`: Training through axolotl: write the data as input_output segments, run `axolotl train`.
- `job`: Supervised fine-tuning for generative NER: fft | lora | qlora, DeepSpeed ZeRO, packing, resume
  (the Trainer's arguments and resuming: jobs.trainer).
"""
