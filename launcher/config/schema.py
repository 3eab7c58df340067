"""Shared machinery for the YAML schemas: strict models, loading, readable errors, --set overrides."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from launcher.config.yamlio import Loader
from launcher.errors import UserError, choices_text, did_you_mean
from launcher.shell import check_env_name, control_character
from launcher.tracking.wandb_mode import is_secret, redact_text

M = TypeVar("M", bound=BaseModel)


TEXT_FIELDS = frozenset({"description"})
"""Fields that hold free text, never put into a script: they may span lines (newlines and tabs)."""


def _first_control(value: Any, allowed: str) -> tuple[str, str] | None:
    """(the string, its first control character) of the first string in `value` (a string, or the
    keys and items of lists and mappings; sections validate themselves) holding one not in `allowed`."""
    if isinstance(value, str):
        found = control_character(value, allowed)
        return (value, found) if found else None
    items: list[Any] = []
    if isinstance(value, dict):
        items = [x for pair in value.items() for x in pair]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    for item in items:
        hit = _first_control(item, allowed)
        if hit is not None:
            return hit
    return None


class Strict(BaseModel):
    """Base for every schema section: unknown keys are errors, assignments are validated, floats
    are finite (`1e309` and `.inf` are refused, never an OverflowError in a job), and no string
    holds a control character (a value may become one line of a job script, `#SBATCH
    --account=...`; only the free text of TEXT_FIELDS may span lines)."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        hit = _first_control(value, "\n\t" if info.field_name in TEXT_FIELDS else "")
        if hit is not None:
            text, char = hit
            raise ValueError(
                f"{text!r} holds the control character {char!r}; valid: printable text on one line "
                "(a value may become a line of the job script)"
            )
        return value


def _env_key(name: str) -> str:
    check_env_name(name)
    if is_secret(name):
        raise ValueError(
            "looks like a secret; secrets reach jobs through your environment only, never through "
            "a recipe or a cluster profile"
        )
    return name


def _env_value(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


EnvVars = dict[Annotated[str, AfterValidator(_env_key)], Annotated[str, BeforeValidator(_env_value)]]
"""The `env` of a recipe or a cluster profile: keys are environment names and never secrets; a
number (`OMP_NUM_THREADS: 4`, `--set env.N=1`) is the string it reads as."""

MAX_ERRORS = 5


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside `X`, `X | None` or `Annotated[X, ...]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return annotation is dict or origin is dict


def _model_at(model: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """Walk field names down from `model`; None when the path leaves the schema."""
    current: type[BaseModel] | None = model
    for part in path:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        current = _submodel(current.model_fields[part].annotation)
    return current


def _key_path(loc: tuple[str | int, ...]) -> str:
    parts = [str(p) for p in loc if isinstance(p, str) and not re.search(r"[\[\]()]", p)]
    return ".".join(parts) or "(top level)"


Blame = Callable[[str], str]


def _blame_file(source: str) -> Blame:
    return lambda key: f"{source}: {key}"


def _union_arms(annotation: Any) -> list[Any]:
    """The members of a union annotation other than None (one member: not a union)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_arms(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _strip_union_tags(
    model: type[BaseModel], loc: tuple[Any, ...]
) -> tuple[tuple[Any, ...], str | None, int]:
    """`loc` without pydantic's union-member tags (`GpuSpec`, `literal['auto']`); which arm the
    error came from ("model", "other" or None) and how long the loc of that union field is."""
    current: type[BaseModel] | None = model
    out: list[Any] = []
    arm: str | None = None
    field_len = 0
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        out.append(part)
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            current = None
            continue
        annotation = current.model_fields[part].annotation
        arms = _union_arms(annotation)
        current = _submodel(annotation)
        if len(arms) > 1 and parts and arm is None:
            tag = parts.pop(0)
            models = [a for a in arms if isinstance(a, type) and issubclass(a, BaseModel)]
            named = next((m for m in models if m.__name__ == tag), None)
            arm, field_len, current = ("model" if named else "other"), len(out), named
    return tuple(out), arm, field_len


def _drop_other_arms(errors: list[Any], model: type[BaseModel]) -> list[Any]:
    """Of the errors a union field gives for each of its members, keep those of the member the
    value was meant for: the section when it is a mapping, else the plain choices."""
    tagged = [(e, *_strip_union_tags(model, tuple(e["loc"]))) for e in errors]
    kept = []
    plain_unions_seen: set[tuple[Any, ...]] = set()
    for error, loc, arm, n in tagged:
        if arm is not None:
            siblings = [(a, e) for e, lc, a, m in tagged if m == n and lc[:n] == loc[:n] and a is not None]
            is_mapping = any(isinstance(e.get("input"), dict) for a, e in siblings if a == "other")
            if any(a == "model" for a, _ in siblings):
                if (arm == "other") == is_mapping:
                    continue
            elif loc[:n] in plain_unions_seen:  # `float | int`: one message is enough
                continue
            else:
                plain_unions_seen.add(loc[:n])
        kept.append({**error, "loc": loc})
    return kept


def _message(error: Any, model: type[BaseModel]) -> tuple[str | None, str]:
    """(key path or None when the message names its own key, what is wrong) of one pydantic error."""
    loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
    loc = tuple(p for p in loc if not (isinstance(p, str) and re.search(r"[\[\]()]", p)))
    key: str | None = _key_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        valid = list(parent.model_fields) if parent else []
        msg = f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), valid)}; valid keys: {choices_text(valid)}"
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'|(\d+)", expected)
        flat = [a or b for a, b in options]
        got = error.get("input")
        msg = f"'{got}' is not valid{did_you_mean(str(got), flat)}; valid: {choices_text(flat)}"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        text = error["msg"].removeprefix("Value error, ")
        named = re.match(r"^([A-Za-z_][\w.]*): (.*)$", text)
        if not loc and named:
            key, text = named.groups()
        got = error.get("input")
        quiet = isinstance(got, dict | list | BaseModel) or got is None or repr(got) in text
        shown = "" if quiet else f" (got {got!r})"
        msg = f"{text}{shown}"
    return key, msg


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str | Blame) -> str:
    """Every error of `err`, one line each (`<where>: <key.path>: <what is wrong>; valid ...`), at
    most MAX_ERRORS of them. `source` is the file, or a function giving the prefix for a key (so
    that a value given by `--set` is blamed on the `--set` argument, not on the file)."""
    blame = _blame_file(source) if isinstance(source, str) else source
    errors = _drop_other_arms(err.errors(), model)
    # a misspelt key also makes its intended key "missing": report the misspelling only
    misspelt = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}
    errors = [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"][:-1]) in misspelt)]
    lines: list[str] = []
    for error in errors:
        key, msg = _message(error, model)
        line = f"{blame(key or '(top level)')}: {msg}"
        if line not in lines:
            lines.append(line)
    if len(lines) > MAX_ERRORS:
        lines = [*lines[:MAX_ERRORS], f"... and {len(lines) - MAX_ERRORS} more error(s)"]
    return "\n".join(lines)


def override_blame(source: str, overrides: list[str]) -> Blame:
    """The prefix for an error at a key: `--set KEY` when an override set that key (or a section
    above or below it), else `<file>: KEY`."""
    keys = [".".join(parse_override(o)[0]) for o in overrides]

    def blame(key: str) -> str:
        for given in reversed(keys):  # the last --set of a key wins, so it is the one to blame
            if given == key:
                return f"--set {key}"
            if key.startswith(given + ".") or given.startswith(key + "."):
                return f"--set {given}: {key}"
        return f"{source}: {key}"

    return blame


def validate(model: type[M], data: dict[str, Any], source: str, overrides: list[str] | None = None) -> M:
    """Validate `data` against `model`, turning pydantic's report into UserError lines that name
    the file, or the `--set` argument for a key it set."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        blame = override_blame(source, overrides or [])
        raise UserError(format_validation_error(err, model, blame)) from None


def _expand(model: type[BaseModel] | None, value: Any) -> dict[str, Any]:
    """A section given in shorthand (`quantization: int4`) as the mapping it stands for."""
    if model is None or value is None:
        return {}
    try:
        return model.model_validate(value).model_dump(exclude_unset=True)
    except ValidationError:
        return {}


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into the key path and the YAML-parsed value."""
    if "=" not in text:
        raise UserError(f"--set {text}: expected key=value, e.g. --set train.lr=1e-5")
    key, raw = text.split("=", 1)
    raw = redact_text(raw)  # a secret pasted on the command line is never written anywhere
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UserError(f"--set {text}: empty key; expected key=value, e.g. --set train.lr=1e-5")
    try:
        value = yaml.load(raw, Loader=Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(model: type[BaseModel], data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set key=value` overrides to raw data; a key outside the schema is a UserError."""
    for text in overrides:
        parts, value = parse_override(text)
        current: type[BaseModel] | None = model
        node = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if current is not None:
                if part not in current.model_fields:
                    valid = list(current.model_fields)
                    where = ".".join(parts[: depth + 1])
                    raise UserError(
                        f"--set {where}: unknown key '{part}'{did_you_mean(part, valid)}; "
                        f"valid keys: {choices_text(valid)}"
                    )
                annotation = current.model_fields[part].annotation
                nxt = _submodel(annotation)
                if not last and nxt is None and not _is_mapping(annotation):
                    raise UserError(f"--set {'.'.join(parts)}: '{part}' is a plain value and has no sub-keys")
                current = nxt
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = _expand(current, child)
                    node[part] = child
                node = child
    return data
