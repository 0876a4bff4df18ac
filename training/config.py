"""Typed configs and the CLI derived from them (one flag per dataclass field; ``--dry-run`` prints the result)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _field_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _field_type(args[0])
    return tp


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = _field_type(hints[f.name])
        flag = "--" + (prefix + f.name).replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        helptext = (f.metadata.get("help", "") + f" (default: {default})").strip()
        if tp is bool:
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None, help=helptext)
        elif typing.get_origin(tp) in (tuple, list):
            inner = typing.get_args(tp)[0]
            parser.add_argument(flag, type=inner, nargs="+", default=None, help=helptext)
        else:
            parser.add_argument(flag, type=tp, default=None, help=helptext)


def from_args(cls: type[T], args: argparse.Namespace, prefix: str = "") -> T:
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        v = getattr(args, (prefix + f.name).replace("-", "_"), None)
        if v is not None:
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


def field(default: Any, help: str) -> Any:  # noqa: A002 - mirrors dataclasses.field
    if isinstance(default, (list, tuple, dict)):
        return dataclasses.field(default_factory=lambda: default, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def to_json(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, default=str)
