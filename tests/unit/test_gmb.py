"""jobs.data.gmb: the shipped corpus, its pickle cache and the research's split."""

from __future__ import annotations

import pickle
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from jobs.data.gmb import GMB_ZIP, Sentence, cache_dir, load_gmb, parse_gmb, split_gmb

N_SENTENCES = 47_959
PINNED_TEST_HEAD = [13390, 3036, 6014, 34940, 9605]
PINNED_TRAIN_HEAD = [31785, 26408, 44711, 32072, 36569]


@pytest.fixture(scope="module")
def gmb() -> list[Sentence]:
    return load_gmb()


def test_shipped_corpus_counts(gmb: list[Sentence]) -> None:
    assert GMB_ZIP.is_file()
    assert len(gmb) == N_SENTENCES
    assert sum(len(s.tokens) for s in gmb) == 1_048_575
    assert [s.id for s in gmb] == list(range(1, N_SENTENCES + 1))
    lengths = [len(s.tokens) for s in gmb]
    assert (min(lengths), max(lengths)) == (1, 104)
    assert all(len(s.tokens) == len(s.tags) for s in gmb)
    tags = Counter(t for s in gmb for t in s.tags)
    assert len(tags) == 17
    assert tags["O"] == 887_908
    assert (tags["B-geo"], tags["I-geo"], tags["B-nat"], tags["I-nat"]) == (37_644, 7_414, 201, 51)


def test_literal_none_tokens_survive(gmb: list[Sentence]) -> None:
    tokens = [t for s in gmb for t in s.tokens]
    assert tokens.count("None") == 10
    assert all(isinstance(t, str) and t for t in tokens)


def test_latin1_words_decode(gmb: list[Sentence]) -> None:
    non_ascii = [t for s in gmb for t in s.tokens if not t.isascii()]
    assert len(non_ascii) == 53  # word rows, as the README counts them


def test_first_sentence(gmb: list[Sentence]) -> None:
    first = gmb[0]
    assert first.id == 1
    assert first.text.startswith("Thousands of demonstrators have marched through London")
    assert first.tags[first.tokens.index("London")] == "B-geo"


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv.zip"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_gmb(missing)


def _write_small_corpus(path: Path) -> None:
    rows = [
        "Sentence #,Word,POS,Tag",
        "Sentence: 7,Mr.,NNP,B-per",
        ",None,NNP,I-per",
        ",left,VBD,O",
        "Sentence: 3,In,IN,O",
        ",Paris,NNP,B-geo",
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ner_dataset.csv", ("\n".join(rows) + "\n").encode("latin-1"))


def test_cache_is_written_reused_and_survives_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    corpus = tmp_path / "small.csv.zip"
    _write_small_corpus(corpus)

    first = load_gmb(corpus)
    assert first == [
        Sentence(7, ["Mr.", "None", "left"], ["B-per", "I-per", "O"]),
        Sentence(3, ["In", "Paris"], ["O", "B-geo"]),
    ]
    pickles = list(cache_dir().glob("gmb-*.pkl"))
    assert len(pickles) == 1 and len(pickles[0].stem) == len("gmb-") + 64
    assert cache_dir() == tmp_path / "cache" / "recipe-launcher"

    # a second load reads the pickle: prove it by planting a recognisable value
    blob = pickle.loads(pickles[0].read_bytes())
    blob["tokens"][1] = ["In", "Lyon"]
    pickles[0].write_bytes(pickle.dumps(blob))
    assert load_gmb(corpus)[1].tokens == ["In", "Lyon"]
    assert load_gmb(corpus, cache=False) == first

    pickles[0].write_bytes(b"not a pickle")
    assert load_gmb(corpus) == first


def test_unreadable_corpus_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Sentence #,Word,POS,Tag\n,orphan,NN,O\n", encoding="latin-1")
    with pytest.raises(ValueError, match="first row"):
        parse_gmb(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("Sentence #,Word,POS,Tag\nSentence: 1,a,NN,O\nSentence: 1,b,NN,O\n", encoding="latin-1")
    with pytest.raises(ValueError, match="appears twice"):
        parse_gmb(dup)


def test_split_sizes_and_partition(gmb: list[Sentence]) -> None:
    split = split_gmb(gmb)
    assert len(split.test) == 14_388  # ceil(0.3 * 47,959)
    assert len(split.validation) == 672  # ceil(0.02 * 33,571)
    assert len(split.train) == 33_571 - 672
    ids = [s.id for part in (split.train, split.validation, split.test) for s in part]
    assert sorted(ids) == list(range(1, N_SENTENCES + 1))

    assert len(split_gmb(gmb, validation_size=100).validation) == 100
    assert len(split_gmb(gmb, validation_size=0).validation) == 0


def test_split_is_deterministic_and_pinned(gmb: list[Sentence]) -> None:
    a, b = split_gmb(gmb), split_gmb(gmb)
    assert [s.id for s in a.test] == [s.id for s in b.test]
    assert [s.id for s in a.train] == [s.id for s in b.train]
    # the permutation numpy's RandomState(42) gives for 47,959 items, pinned
    assert [s.id for s in a.test[:5]] == PINNED_TEST_HEAD
    assert [s.id for s in a.train[:5]] == PINNED_TRAIN_HEAD
    assert [s.id for s in split_gmb(gmb, seed=1).test[:5]] != PINNED_TEST_HEAD
    # validation is the tail of what train would be without it
    whole = split_gmb(gmb, validation_size=0).train
    assert a.train + a.validation == whole


def test_split_equals_sklearn_train_test_split(gmb: list[Sentence]) -> None:
    sklearn = pytest.importorskip("sklearn.model_selection")
    train, test = sklearn.train_test_split(gmb, test_size=0.3, random_state=42)
    split = split_gmb(gmb, validation_size=0)
    assert [s.id for s in split.test] == [s.id for s in test]
    assert [s.id for s in split.train] == [s.id for s in train]
    small = gmb[:101]
    train, test = sklearn.train_test_split(small, test_size=0.25, random_state=7)
    split = split_gmb(small, test_size=0.25, seed=7, validation_size=0)
    assert (split.train, split.test) == (train, test)


@pytest.mark.parametrize(
    "kwargs",
    [{"test_size": 0.0}, {"test_size": 1.0}, {"validation_size": 1.5}, {"validation_size": 10**6}],
)
def test_split_rejects_bad_sizes(gmb: list[Sentence], kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        split_gmb(gmb[:50], **kwargs)
