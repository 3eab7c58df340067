"""Label trees for text classification: flat (AG News) or hierarchical (the Dewey Decimal tree).

A tree is read from a CSV with the columns code, level, label, definition (names matched without
case; the research's file names its code column ``Sequence``) and an optional ``parent`` column.
Without a parent column a level-n code's parent is the DDC rule generalised: its first n-1
characters, padded with zeros to the code's width (``332`` -> ``330`` -> ``300``).

Codes repeat across levels in the DDC (``300`` is a level-1, a level-2 and a level-3 code), so a
label is identified by (level, code); methods taking a code take its ``level`` too, which may be
left out only where the code is at one level.

The research's DDC file starts with a header-like row (``DDC``, level 1, "Labels (Hierarchical)")
that its pipeline offered as an 11th level-1 candidate. A row whose code is not all digits while
every other row's is, is such a row: it is skipped, logged, and recorded in ``LabelTree.skipped``.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import SetupError, UserError, require_file

log = logging.getLogger(__name__)


def _jobs_files() -> Path:
    """jobs/data/files of the installed `jobs` package (found, not imported: launcher/ never imports
    jobs/), wherever pip put it."""
    spec = importlib.util.find_spec("jobs")
    where = spec.submodule_search_locations if spec is not None else None
    if not where:
        raise SetupError("the jobs package is not installed beside launcher: reinstall recipe-launcher")
    return Path(next(iter(where))) / "data" / "files"


FILES = _jobs_files()
DDC_CSV = FILES / "ddc_labels.csv"
"""The research's DDC tree, a byte copy (see the README's data section)."""
AG_NEWS_CLASSES = FILES / "ag_news_classes.txt"

COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "sequence"),
    "level": ("level",),
    "label": ("label",),
    "definition": ("definition", "description"),
}
"""Each field and the column names (lower case) it is read from, in order of preference."""


@dataclass(frozen=True)
class Label:
    code: str
    level: int
    label: str
    definition: str = ""


def _code_key(code: str) -> tuple[int, int, str]:
    """Code order: numeric codes by value, then the others as strings."""
    return (0, int(code), "") if code.isdigit() else (1, 0, code)


class LabelTree:
    """Labels by (level, code), children in code order, and the rows skipped while reading."""

    def __init__(self, labels: Iterable[Label], parents: dict[tuple[int, str], str] | None = None,
                 skipped: Sequence[str] = (), source: str = "") -> None:  # fmt: skip
        self.source = source
        self.skipped: list[str] = list(skipped)
        self._by_key: dict[tuple[int, str], Label] = {}
        for lab in labels:
            key = (lab.level, lab.code)
            if key in self._by_key:
                raise UserError(f"{source or 'label tree'}: code '{lab.code}' twice at level {lab.level}")
            self._by_key[key] = lab
        self._parent: dict[tuple[int, str], str] = {}
        self._children: dict[tuple[int, str] | None, list[Label]] = {None: []}
        for lab in sorted(self._by_key.values(), key=lambda x: (x.level, _code_key(x.code))):
            if lab.level == 1:
                self._children[None].append(lab)
                continue
            pcode = (parents or {}).get((lab.level, lab.code)) or _prefix_parent(lab.code, lab.level)
            if (lab.level - 1, pcode) not in self._by_key:
                raise UserError(
                    f"{source or 'label tree'}: level-{lab.level} code '{lab.code}' has no parent "
                    f"'{pcode}' at level {lab.level - 1}"
                )
            self._parent[(lab.level, lab.code)] = pcode
            self._children.setdefault((lab.level - 1, pcode), []).append(lab)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_csv(cls, path: str | Path) -> LabelTree:
        """Read a tree from CSV (UTF-8, a BOM allowed). Bad files raise a one-line UserError."""
        path = Path(path)
        if path.is_dir():
            require_file(path)  # "is a directory", not the OS's "cannot read ... Is a directory"
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                header = [h.strip() for h in reader.fieldnames or []]
                rows = list(reader)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise UserError(f"{path}: cannot read the label CSV ({str(err).splitlines()[0]})") from None
        lower = {h.lower(): h for h in header}
        found: dict[str, str] = {}
        for field, names in COLUMNS.items():
            name = next((lower[n] for n in names if n in lower), None)
            if name is None and field != "definition":
                raise UserError(
                    f"{path}: no '{field}' column (looked for {', '.join(names)}); found: {', '.join(header)}"
                )
            if name is not None:
                found[field] = name
        parent_col = lower.get("parent")
        raw: list[tuple[int, Label, str]] = []
        for lineno, row in enumerate(rows, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            code, level_text = row[found["code"]], row[found["level"]]
            try:
                level = int(level_text)
            except ValueError:
                raise UserError(
                    f"{path}: line {lineno}: level '{level_text}' is not a whole number"
                ) from None
            if not code or level < 1:
                raise UserError(f"{path}: line {lineno}: empty code or level below 1")
            lab = Label(code, level, row[found["label"]], row.get(found.get("definition", ""), ""))
            raw.append((lineno, lab, row.get(parent_col, "") if parent_col else ""))
        numeric = [lab.code.isdigit() for _, lab, _ in raw]
        skipped: list[str] = []
        kept: list[Label] = []
        parents: dict[tuple[int, str], str] = {}
        for (lineno, lab, parent), is_digit in zip(raw, numeric, strict=True):
            if not is_digit and sum(numeric) == len(numeric) - 1 and len(numeric) > 1:
                reason = (
                    f"{path}: line {lineno}: skipped code '{lab.code}' (level {lab.level}, "
                    f"'{lab.label}'): not a numeric code like every other row, a header-like row, not a class"
                )
                log.warning(reason)
                skipped.append(reason)
                continue
            kept.append(lab)
            if parent:
                parents[(lab.level, lab.code)] = parent
        if not kept:
            raise UserError(f"{path}: no labels")
        return cls(kept, parents, skipped, source=str(path))

    @classmethod
    def flat(cls, names: Sequence[str], codes: Sequence[str] | None = None, source: str = "") -> LabelTree:
        """One level of labels; codes default to "1", "2", ... (AG News' Class Index)."""
        codes = list(codes) if codes is not None else [str(i) for i in range(1, len(names) + 1)]
        if len(codes) != len(names):
            raise ValueError(f"{len(names)} names but {len(codes)} codes")
        return cls((Label(c, 1, n) for c, n in zip(codes, names, strict=True)), source=source)

    @classmethod
    def from_lines(cls, path: str | Path) -> LabelTree:
        """A flat tree from a file with one label name per line (AG News' classes.txt)."""
        path = Path(path)
        try:
            names = [
                line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()
            ]
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: cannot read the class list ({str(err).splitlines()[0]})") from None
        if not names:
            raise UserError(f"{path}: no class names")
        return cls.flat(names, source=str(path))

    @classmethod
    def ddc(cls) -> LabelTree:
        """The shipped DDC tree (10 / 99 / 904 labels at levels 1 / 2 / 3)."""
        return cls.from_csv(DDC_CSV)

    @classmethod
    def ag_news(cls) -> LabelTree:
        """The shipped AG News classes: 1 World, 2 Sports, 3 Business, 4 Sci/Tech."""
        return cls.from_lines(AG_NEWS_CLASSES)

    # -- queries --------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return max(level for level, _ in self._by_key)

    @property
    def width(self) -> int:
        """The widest code (3 for the DDC), for padding codes written without zeros."""
        return max(len(code) for _, code in self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def level(self, n: int) -> list[Label]:
        """The labels at level n (1 = the top), in code order."""
        return sorted(
            (lab for (lv, _), lab in self._by_key.items() if lv == n), key=lambda x: _code_key(x.code)
        )

    def _level_of(self, code: str, level: int | None) -> int | None:
        """`level`, else the one level `code` is at (None if at none; KeyError if at several)."""
        if level is not None:
            return level
        levels = sorted(lv for lv, c in self._by_key if c == code)
        if len(levels) > 1:
            raise KeyError(f"code '{code}' is at levels {', '.join(map(str, levels))}; pass level=")
        return levels[0] if levels else None

    def get(self, code: str, level: int | None = None) -> Label | None:
        """The label at (level, code), or None. Without level the code must be at one level."""
        return self._by_key.get((self._level_of(code, level) or 0, code))

    def parent(self, code: str, level: int | None = None) -> Label | None:
        """The label one level above, or None at level 1 (or for an unknown code)."""
        lv = self._level_of(code, level) or 0
        pcode = self._parent.get((lv, code))
        return None if pcode is None else self._by_key[(lv - 1, pcode)]

    def children(self, code: str | None, level: int | None = None) -> list[Label]:
        """The labels under (level, code) in code order; ``children(None)`` is level 1."""
        if code is None:
            return list(self._children[None])
        return list(self._children.get((self._level_of(code, level) or 0, code), []))

    def candidates(self, code: str, level: int) -> list[Label]:
        """The research's oracle candidates for a gold (level, code): its siblings, itself included."""
        if level == 1:
            return self.level(1)
        lv_parent = self.parent(code, level)
        if lv_parent is None:
            raise KeyError(f"level-{level} code '{code}' is not in {self.source or 'the label tree'}")
        return self.children(lv_parent.code, level - 1)

    def normalise_code(self, code: str) -> str:
        """A numeric code written without zero padding (the research's ``ddc_code``) padded to width."""
        code = str(code).strip()
        return code.zfill(self.width) if code.isdigit() and len(code) < self.width else code

    def by_label(self, level: int) -> dict[str, Label]:
        """The labels at a level keyed by their text (first in code order wins)."""
        out: dict[str, Label] = {}
        for lab in self.level(level):
            out.setdefault(lab.label, lab)
        return out


def _prefix_parent(code: str, level: int) -> str:
    """The DDC rule: keep the first level-1 characters, pad with zeros (``332``, 3 -> ``330``)."""
    keep = level - 1
    return code[:keep] + "0" * max(len(code) - keep, 0)
