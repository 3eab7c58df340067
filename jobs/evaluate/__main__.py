"""`python -m jobs.evaluate`: runs `jobs.evaluate.job`."""

import sys

from jobs.evaluate.job import main

sys.exit(main())
