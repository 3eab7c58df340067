"""Shared machinery for the YAML schemas: strict models, loading, readable errors, --set overrides."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from launcher.errors import UserError, choices_text, did_you_mean
from launcher.yamlio import Loader

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every schema section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


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


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line: `<source>: <key.path>: <what is wrong>; valid ...`, plus a count of further errors."""
    errors = err.errors()
    # a misspelt key also makes its intended key "missing": report the misspelling
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in first["loc"] if isinstance(p, str | int))
    loc = tuple(p for p in loc if not (isinstance(p, str) and re.search(r"[\[\]()]", p)))
    key = _key_path(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        valid = list(parent.model_fields) if parent else []
        msg = f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), valid)}; valid keys: {choices_text(valid)}"
    elif kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'|(\d+)", expected)
        flat = [a or b for a, b in options]
        got = first.get("input")
        msg = f"'{got}' is not valid{did_you_mean(str(got), flat)}; valid: {choices_text(flat)}"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        text = first["msg"].removeprefix("Value error, ")
        named = re.match(r"^([A-Za-z_][\w.]*): (.*)$", text)
        if not loc and named:
            key, text = named.groups()
        got = first.get("input")
        shown = "" if isinstance(got, dict | list | BaseModel) or got is None else f" (got {got!r})"
        msg = f"{text}{shown}"
    more = len(errors) - 1
    tail = f" [and {more} more error{'s' if more > 1 else ''}]" if more else ""
    return f"{source}: {key}: {msg}{tail}"


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate `data` against `model`, turning pydantic's report into one UserError line."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(format_validation_error(err, model, source)) from None


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
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UserError(f"--set {text}: empty key; expected key=value, e.g. --set train.lr=1e-5")
    try:
        value = yaml.load(raw, Loader=Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(model: type[BaseModel], data: dict[str, Any], overrides: list[str]) -> dict:
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
