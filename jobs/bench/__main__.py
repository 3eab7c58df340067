"""`python -m jobs.bench RUN_DIR [...] [--out DIR] [--no-wandb]`: the benchmark table as a job.

The table logic is torch-free and lives in `launcher.scoring.bench`, which `launch bench` uses too.
"""

import sys

from launcher.scoring.bench import main

sys.exit(main())
