"""Where the tests find the repository and their data files, wherever the test module lives."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"  # data files the tests read (and the README's score examples)
GOLDEN = ROOT / "tests" / "golden"  # expected outputs, byte for byte: never edited by hand
