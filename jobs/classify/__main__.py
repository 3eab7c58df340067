"""`python -m jobs.classify`: runs `jobs.classify.job`."""

import sys

from jobs.classify.job import main

sys.exit(main())
