"""`python -m jobs.tiny`: runs `jobs.tiny.models`."""

import sys

from jobs.tiny.models import main

sys.exit(main())
