"""`python -m jobs.smoke`: runs `jobs.smoke.job`."""

import sys

from jobs.smoke.job import main

sys.exit(main())
