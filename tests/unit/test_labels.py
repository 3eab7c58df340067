"""Label trees: the shipped DDC tree (its header-like row skipped) and the flat AG News classes."""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path

import pytest

from launcher.errors import UserError
from launcher.scoring.labels import AG_NEWS_CLASSES, DDC_CSV, Label, LabelTree


def test_shipped_ddc_is_the_research_file() -> None:
    digest = hashlib.sha256(DDC_CSV.read_bytes()).hexdigest()
    assert digest == "edaec2451bbac9c1ab51864e47a47cae350798aecb384aea44d244e80eb360fb"


def test_ddc_file_has_11_99_904_rows_and_the_tree_10_99_904(caplog: pytest.LogCaptureFixture) -> None:
    with DDC_CSV.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [sum(r["Level"] == str(n) for r in rows) for n in (1, 2, 3)] == [11, 99, 904]
    with caplog.at_level(logging.WARNING, logger="launcher.scoring.labels"):
        tree = LabelTree.ddc()
    assert [len(tree.level(n)) for n in (1, 2, 3)] == [10, 99, 904]
    assert tree.depth == 3 and len(tree) == 1013
    (reason,) = tree.skipped
    assert "'DDC'" in reason and "Labels (Hierarchical)" in reason and "line 2" in reason
    assert any("skipped code 'DDC'" in r.getMessage() for r in caplog.records)
    assert tree.get("DDC") is None
    assert "Labels (Hierarchical)" not in [lab.label for lab in tree.level(1)]


def test_ddc_code_order_parents_and_children() -> None:
    tree = LabelTree.ddc()
    assert [lab.code for lab in tree.level(1)] == [f"{i}00" for i in range(10)]
    assert tree.level(1)[3] == Label("300", 1, "Social sciences", tree.level(1)[3].definition)
    assert tree.level(1)[3].definition.startswith("The interdisciplinary")
    assert [lab.code for lab in tree.children("300", 1)] == [f"3{i}0" for i in range(10)]
    assert [lab.code for lab in tree.children("000", 1)] == ["000", "010", "020", "030", "050",
                                                             "060", "070", "080", "090"]  # fmt: skip
    assert [lab.code for lab in tree.children("330", 2)] == [f"33{i}" for i in range(10)]
    assert tree.children("330", 3) == []
    assert tree.children(None) == tree.level(1)
    assert tree.parent("332", 3) == tree.get("330", 2)
    assert tree.get("330", 2).label == "Economics"
    assert tree.parent("330", 2).label == "Social sciences"
    assert tree.parent("300", 1) is None
    assert tree.get("332").level == 3  # at one level only: no level needed
    with pytest.raises(KeyError, match="levels 1, 2, 3"):
        tree.get("300")
    assert tree.get("040") is None and tree.parent("040") is None and tree.children("040") == []
    with pytest.raises(KeyError, match="not in"):
        tree.candidates("041", 3)
    assert tree.candidates("332", 3) == tree.children("330", 2)
    assert len(tree.candidates("330", 2)) == 10
    assert len(tree.candidates("300", 1)) == 10
    assert tree.normalise_code("0") == "000" and tree.normalise_code("10") == "010"
    assert tree.by_label(3)["Economics"].code == "330"


def test_ag_news_flat_tree() -> None:
    tree = LabelTree.ag_news()
    assert [(lab.code, lab.label) for lab in tree.level(1)] == [
        ("1", "World"), ("2", "Sports"), ("3", "Business"), ("4", "Sci/Tech")]  # fmt: skip
    assert tree.depth == 1 and tree.parent("2") is None and tree.children("2") == []
    assert AG_NEWS_CLASSES.name == "ag_news_classes.txt"
    twelve = LabelTree.flat([f"c{i}" for i in range(12)])
    assert [lab.code for lab in twelve.level(1)][9:] == ["10", "11", "12"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_generic_csv_with_parent_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "code,level,label,definition,parent\nA,1,Animals,,\nB,1,Plants,,\n"
                  "cat,2,Cats,small,A\ndog,2,Dogs,,A\nfern,2,Ferns,,B\n")  # fmt: skip
    tree = LabelTree.from_csv(path)
    assert tree.skipped == []
    assert [lab.label for lab in tree.children("A", 1)] == ["Cats", "Dogs"]
    assert tree.parent("fern").code == "B"
    assert tree.get("cat").definition == "small"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,label\n1,x\n", "no 'level' column"),
        ("code,level,label\n1,one,x\n", "level 'one' is not a whole number"),
        ("code,level,label\n100,1,x\n100,1,y\n", "code '100' twice at level 1"),
        ("code,level,label\n100,1,x\n210,2,y\n", "has no parent '200' at level 1"),
        ("code,level,label\n", "no labels"),
    ],
)
def test_bad_label_csv_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(UserError, match=message) as info:
        LabelTree.from_csv(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unreadable_label_csv(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"code,level,label\n1,1,caf\xe9\n")
    with pytest.raises(UserError, match="cannot read"):
        LabelTree.from_csv(path)
    with pytest.raises(UserError, match="cannot read"):
        LabelTree.from_csv(tmp_path / "missing.csv")
