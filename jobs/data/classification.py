"""Classification data: items from a CSV (the shipped AG News test split or any `data.path`), their
label tree, the items of one cell (sample size and seed) and the in-prompt examples (support).

An item's gold codes are read per level from the columns `classify.columns.codes` names; a level
without a column takes the parent (in the tree) of the level below. Support examples come from
the rows that are not being classified, so an example never shows a test item's own label.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.config.recipe import Recipe
from launcher.errors import UserError
from launcher.scoring.labels import Label, LabelTree

FILES = Path(__file__).resolve().parent / "files"
AG_NEWS_CSV = FILES / "ag_news_test.csv"


@dataclass(frozen=True)
class Item:
    """One text to classify: its id, the text as shown in the prompt, and gold code per level."""

    id: str
    text: str
    gold: dict[int, str]


@dataclass
class Dataset:
    name: str
    items: list[Item]  # every row, in file order
    tree: LabelTree


def _read_csv(path: Path, src: str) -> list[dict[str, str]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{src}: data.path: cannot read {path} ({str(err).splitlines()[0]})") from None
    return frame.to_dict("records")


def load_dataset(recipe: Recipe) -> Dataset:
    """Every row of the recipe's data with its gold codes, and the label tree (UserError if bad)."""
    c, src = recipe.classify, recipe.source
    assert c is not None
    path = Path(recipe.data.path).expanduser() if recipe.data.path else AG_NEWS_CSV
    if c.labels:
        tree = LabelTree.from_csv(Path(c.labels).expanduser())
    elif recipe.data.dataset == "ag_news":
        tree = LabelTree.ag_news()
    else:
        raise UserError(f"{src}: classify.labels: dataset csv needs a label tree CSV (code, level, label)")
    rows = _read_csv(path, src)
    cols = c.columns
    header = set(rows[0]) if rows else set()
    for key, names in (("text", cols.text), ("codes", list(cols.codes.values()))):
        missing = [n for n in names if n not in header]
        if missing:
            raise UserError(
                f"{src}: classify.columns.{key}: {', '.join(missing)} not in {path}; "
                f"valid: {', '.join(sorted(header))}"
            )
    if cols.id and cols.id not in header:
        raise UserError(
            f"{src}: classify.columns.id: {cols.id} not in {path}; valid: {', '.join(sorted(header))}"
        )
    deepest = max(c.levels)
    if deepest > tree.depth:
        raise UserError(f"{src}: classify.levels: the label tree has {tree.depth} level(s) (asked {deepest})")
    items = []
    for i, row in enumerate(rows):
        gold = {lv: tree.normalise_code(row[col]) for lv, col in cols.codes.items() if row[col].strip()}
        _fill_parents(gold, tree, deepest)
        text = "\n".join(f"{name}: {row[name]}" for name in cols.text)
        items.append(Item(row[cols.id] if cols.id else str(i), text, gold))
    name = recipe.data.dataset if not recipe.data.path else Path(recipe.data.path).stem
    return Dataset(name, items, tree)


def _fill_parents(gold: dict[int, str], tree: LabelTree, deepest: int) -> None:
    for lv in range(max(gold, default=0), 1, -1):
        if lv - 1 not in gold and tree.get(gold[lv], lv) is not None:
            parent = tree.parent(gold[lv], lv)
            if parent is not None:
                gold[lv - 1] = parent.code


def sample_items(items: Sequence[Item], size: int | None, seed: int) -> tuple[list[Item], list[Item]]:
    """(the cell's items, the rest): pandas' `DataFrame.sample(n=size, random_state=seed)`, the
    research's draw (its AG News level-1 and level-2 cells are exactly these 500 rows of 7,600)."""
    if size is None or size >= len(items):
        return list(items), []
    import numpy as np

    order = np.random.RandomState(seed).permutation(len(items))[:size]
    chosen = {int(i) for i in order}
    return [items[int(i)] for i in order], [it for i, it in enumerate(items) if i not in chosen]


def support_examples(
    pool: Sequence[Item], candidates: Sequence[Label], level: int, shots: int, strategy: str, seed: int
) -> list[tuple[Item, Label]]:
    """`shots` examples for a prompt whose candidates are `candidates` (one level, one parent).

    per_class: examples spread over the candidates, k = ceil(shots / candidates) per class (the
    first in an order of row ids seeded with `seed`), taken round-robin; first_per_parent: the
    research's first row (in file order) of each candidate's bucket. Classes with no pool row are passed over.
    """
    if shots <= 0:
        return []
    by_code: dict[str, list[Item]] = {lab.code: [] for lab in candidates}
    for item in pool:
        code = item.gold.get(level)
        if code in by_code:
            by_code[code].append(item)
    labels = {lab.code: lab for lab in candidates}
    if strategy == "first_per_parent":
        firsts = [(rows[0], labels[code]) for code, rows in by_code.items() if rows]
        return firsts[:shots]
    rng = random.Random(f"{seed}:{level}:{','.join(labels)}")
    k = -(-shots // max(len(candidates), 1))

    # each row's place in a seeded order of row ids, not a draw from the pool: the examples stay the
    # same when the cell grows or shrinks (a smaller cell's rerun finds its prompts in the cache)
    def place(item: Item) -> str:
        return hashlib.sha256(f"{seed}:{level}:{item.id}".encode()).hexdigest()

    drawn = {code: sorted(rows, key=place)[:k] for code, rows in by_code.items()}
    order = list(labels)
    rng.shuffle(order)
    out: list[tuple[Item, Label]] = []
    for r in range(k):
        out += [(drawn[code][r], labels[code]) for code in order if r < len(drawn[code])]
    return out[:shots]
