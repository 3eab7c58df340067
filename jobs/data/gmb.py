"""The GMB NER corpus (Kaggle "Annotated Corpus for NER"): loading and the research's split.

The corpus ships with the project as ``jobs/data/files/ner_dataset.csv.zip`` (columns
``Sentence #, Word, POS, Tag``; latin-1; ``Sentence #`` filled in only on each sentence's first
token). Parsing its 1,048,575 rows takes seconds, so the parsed sentences are cached as a pickle
under ``$XDG_CACHE_HOME/recipe-launcher/`` (default ``~/.cache/recipe-launcher/``), keyed by the
zip's sha256.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from launcher.jsonio import atomic_write_bytes

if TYPE_CHECKING:
    from launcher.config.recipe import Recipe
    from launcher.config.sections import DataSpec

GMB_ZIP: Path = Path(__file__).resolve().parent / "files" / "ner_dataset.csv.zip"
"""The shipped corpus."""

_CACHE_FORMAT = 1
_SENTENCE_PREFIX = "Sentence: "


@dataclass(frozen=True)
class Sentence:
    """One GMB sentence: ``id`` is N of ``Sentence: N``; ``tokens`` and ``tags`` align 1:1."""

    id: int
    tokens: list[str]
    tags: list[str]

    @property
    def text(self) -> str:
        """The tokens joined with single spaces (how the research presents a sentence)."""
        return " ".join(self.tokens)


@dataclass(frozen=True)
class GmbSplit:
    """Train, validation and test sentences; the three are disjoint and cover the input."""

    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence]


def cache_dir() -> Path:
    """Where parsed corpora are cached: ``$XDG_CACHE_HOME/recipe-launcher`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recipe-launcher"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_gmb(path: Path) -> list[Sentence]:
    """Parse the corpus CSV (zipped or not) into sentences, in file order, without any cache.

    Reads with ``encoding="latin-1", keep_default_na=False`` so the ten literal ``None`` tokens
    stay strings. Raises ``ValueError`` if the first row starts no sentence, a ``Sentence #``
    cell is malformed, or a sentence id repeats.
    """
    import pandas as pd  # heavy import, only needed on a cache miss

    df = pd.read_csv(path, encoding="latin-1", keep_default_na=False, dtype=str)
    marks = df["Sentence #"].to_numpy()
    words = df["Word"].tolist()
    tags = df["Tag"].tolist()
    starts = np.flatnonzero(marks != "").tolist()
    if not starts or starts[0] != 0:
        raise ValueError(f"{path}: the first row does not start a sentence")
    ends = [*starts[1:], len(words)]

    sentences: list[Sentence] = []
    seen: set[int] = set()
    for begin, end in zip(starts, ends, strict=True):
        mark = str(marks[begin])
        if not mark.startswith(_SENTENCE_PREFIX):
            raise ValueError(f"{path}: row {begin + 2}: unexpected Sentence # value {mark!r}")
        sid = int(mark[len(_SENTENCE_PREFIX) :])
        if sid in seen:
            raise ValueError(f"{path}: sentence id {sid} appears twice")
        seen.add(sid)
        sentences.append(Sentence(id=sid, tokens=words[begin:end], tags=tags[begin:end]))
    return sentences


def load_gmb(path: Path | None = None, *, cache: bool = True) -> list[Sentence]:
    """All sentences of the GMB corpus at ``path`` (default: the shipped zip), in file order.

    Raises ``FileNotFoundError`` naming the path when it does not exist. With ``cache`` the
    parse is stored in and reused from ``cache_dir()/gmb-<sha256 of the file>.pkl``; a cache
    that cannot be read or written is ignored. Each call returns fresh objects.
    """
    path = Path(path) if path is not None else GMB_ZIP
    if not path.is_file():
        raise FileNotFoundError(f"GMB corpus not found: {path}")
    if not cache:
        return parse_gmb(path)

    pkl = cache_dir() / f"gmb-{_sha256(path)}.pkl"
    try:
        with pkl.open("rb") as f:
            blob = pickle.load(f)
        if blob.get("format") == _CACHE_FORMAT:
            return [
                Sentence(id=i, tokens=t, tags=g)
                for i, t, g in zip(blob["ids"], blob["tokens"], blob["tags"], strict=True)
            ]
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, KeyError, TypeError):
        pass

    sentences = parse_gmb(path)
    blob = {
        "format": _CACHE_FORMAT,
        "ids": [s.id for s in sentences],
        "tokens": [s.tokens for s in sentences],
        "tags": [s.tags for s in sentences],
    }
    try:
        pkl.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(pkl, pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass  # a cache that cannot be written is only slower
    return sentences


def split_gmb(
    sentences: Sequence[Sentence],
    test_size: float = 0.3,
    seed: int = 42,
    validation_size: int | float = 0.02,
) -> GmbSplit:
    """The research's split, plus a validation slice cut from the end of train.

    Reproduces ``sklearn.model_selection.train_test_split(sentences, test_size=test_size,
    random_state=seed)`` exactly, without sklearn: ``p = np.random.RandomState(seed)
    .permutation(n)``, ``n_test = ceil(test_size * n)``, test = ``p[:n_test]``, train =
    ``p[n_test:]``, both in permutation order. Then ``validation_size`` (an int count, or a float
    fraction of that train part, rounded up) sentences are moved from the end of train to
    validation, so test is exactly what that call gives on the same sentence list. Deterministic.
    """
    n = len(sentences)
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise ValueError(f"test_size={test_size} leaves no training sentences out of {n}")
    perm = np.random.RandomState(seed).permutation(n)
    test = [sentences[i] for i in perm[:n_test]]
    train = [sentences[i] for i in perm[n_test:]]

    if isinstance(validation_size, bool):
        raise TypeError("validation_size must be an int or a float")
    if isinstance(validation_size, int):
        n_val = validation_size
    elif 0.0 <= validation_size < 1.0:
        n_val = math.ceil(validation_size * len(train))
    else:
        raise ValueError(f"validation_size fraction must be in [0, 1), got {validation_size}")
    if not 0 <= n_val < len(train):
        raise ValueError(f"validation_size={validation_size} does not fit {len(train)} sentences")
    cut = len(train) - n_val
    return GmbSplit(train=train[:cut], validation=train[cut:], test=test)


def recipe_split(data: DataSpec) -> GmbSplit:
    """The split a recipe's ``data`` section names: its corpus (``data.path`` or the shipped zip),
    ``test_size``, ``seed`` and ``validation_size``. Training and evaluation both read it here."""
    sentences = load_gmb(Path(data.path) if data.path else None)
    return split_gmb(sentences, data.test_size, data.seed, data.validation_size)


def eval_sentences(recipe: Recipe, split: GmbSplit | None = None) -> list[Sentence]:
    """The sentences an evaluation scores: the recipe's ``eval.split`` (test or validation) of its
    split (``split`` when the caller has it already), capped by ``eval.max_samples`` (else
    ``data.max_eval_samples``)."""
    split = split or recipe_split(recipe.data)
    sentences = split.test if recipe.eval.split == "test" else split.validation
    cap = recipe.eval.max_samples or recipe.data.max_eval_samples
    return sentences[:cap] if cap else sentences
