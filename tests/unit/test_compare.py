"""`launch compare`'s pure part: flattened recipes and the keys that differ."""

from __future__ import annotations

from launcher.loop.compare import differing, flatten


def test_flatten_and_differing_keys() -> None:
    a = {"name": "x", "train": {"lr": 1e-3, "epochs": 2, "extra": {}}, "tags": [1, 2]}
    b = {"name": "x", "train": {"lr": 3e-3, "epochs": 2}, "tags": [1, 2], "new": None}
    assert flatten(a) == {"name": "x", "train.lr": 1e-3, "train.epochs": 2, "train.extra": {}, "tags": [1, 2]}
    assert differing([a, b]) == ["new", "train.extra", "train.lr"]  # absent differs from null and {}
    assert differing([a, a]) == []
