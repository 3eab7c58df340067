"""`python -m jobs.spacy`: runs `jobs.spacy.job`."""

import sys

from jobs.spacy.job import main

sys.exit(main())
