"""Typed configs that are also the command line: a dataclass field declared with ``option(default, help)``
becomes ``--field-name`` (its type, default, help, choices, and an environment variable that overrides the
default), so an option is written once, beside the field it sets."""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def option(
    default: Any,
    help: str,  # noqa: A002 - the argparse word
    choices: Iterable[Any] | None = None,
    env: str | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A dataclass field that is also a command-line option. ``env`` names an environment variable whose
    value replaces the default on the command line (not in the dataclass); ``parse`` converts the text."""
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "env": env, "parse": parse}
    return dataclasses.field(default=default, metadata=meta)


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """A command-line type: an integer in ``lo..hi``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text!r}: need an integer in {lo}..{hi}")
        return v

    parse.__name__ = f"integer in {lo}..{hi}"
    return parse


def _value_type(tp: Any) -> Any:
    """``int | None`` -> int; other annotations unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def _typed(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """``fn`` with its ValueError as argparse's own message ("argument --x: <why>")."""
    if fn is bool:
        return fn

    def convert(text: str) -> Any:
        try:
            return fn(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    return convert


def add_options(parser: argparse.ArgumentParser | Any, cls: type, only: Iterable[str] | None = None) -> None:
    """One ``--flag`` per ``option`` field of ``cls`` (or of the fields named in ``only``)."""
    hints = typing.get_type_hints(cls)
    wanted = set(only) if only is not None else None
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata or (wanted is not None and f.name not in wanted):
            continue
        meta = f.metadata
        default = f.default
        if meta["env"] and os.environ.get(meta["env"]):
            default = os.environ[meta["env"]]
        tp = _typed(meta["parse"] or _value_type(hints[f.name]))
        text = meta["help"] + (f" (default: {default}" + (f"; ${meta['env']}" if meta["env"] else "") + ")")
        kwargs: dict[str, Any] = {"default": default, "help": text.replace("%", "%%"), "dest": f.name}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = tp
            kwargs["metavar"] = f.name.upper() if not meta["choices"] else None
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """The dataclass from parsed arguments (fields without an option keep their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in vars(args).items() if k in names})
