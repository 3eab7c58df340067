"""`python -m jobs.train`: runs `jobs.train.job`."""

import sys

from jobs.train.job import main

sys.exit(main())
