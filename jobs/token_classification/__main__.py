"""`python -m jobs.token_classification`: runs `jobs.token_classification.job`."""

import sys

from jobs.token_classification.job import main

sys.exit(main())
