"""The benchmark table as a job: `python -m jobs.bench RUN_DIR [...] [--out DIR] [--no-wandb]`.

The table logic is torch-free and lives in `launcher.scoring.bench`, which `launch bench` uses too.
"""

from __future__ import annotations

import sys

from launcher.scoring.bench import main

if __name__ == "__main__":
    sys.exit(main())
