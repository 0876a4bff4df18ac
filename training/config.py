"""Typed configs and the command line derived from them (the idea of LivePortrait's ``argument_config.py``: the
commented dataclass *is* the command line). One flag per dataclass field, named after the field (``--data-root``
for ``DataConfig.root`` under the prefix ``data_``) unless the field names its own (``flag=``); the help is the
field's comment. ``--dry-run`` prints the resolved config and exits.

``RunConfig`` holds what every training script shares: seed, device, threads, run folder, resume and export.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass
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
        dest = (prefix + f.name).replace("-", "_")
        flag = f.metadata.get("flag") or "--" + (prefix + f.name).replace("_", "-")
        named = {"dest": dest, "metavar": flag.lstrip("-").replace("-", "_").upper()}
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        helptext = (f.metadata.get("help", "") + f" (default: {default})").strip()
        if tp is bool:
            parser.add_argument(
                flag, **named, type=lambda s: s.lower() in ("1", "true", "yes"), default=None, help=helptext
            )
        elif typing.get_origin(tp) in (tuple, list):
            inner = typing.get_args(tp)[0]
            parser.add_argument(flag, **named, type=inner, nargs="+", default=None, help=helptext)
        else:
            parser.add_argument(flag, **named, type=tp, default=None, help=helptext)


def from_args(cls: type[T], args: argparse.Namespace, prefix: str = "") -> T:
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        v = getattr(args, (prefix + f.name).replace("-", "_"), None)
        if v is not None:
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


def field(default: Any, help: str, flag: str | None = None) -> Any:  # noqa: A002 - mirrors dataclasses.field
    """A dataclass field with its help text (and, optionally, its own command-line flag)."""
    meta = {"help": help, **({"flag": flag} if flag else {})}
    if isinstance(default, (list, tuple, dict)):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def to_json(cfg: Any) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, default=str)


@dataclass
class RunConfig:
    """What every training script shares; its flags carry no prefix (``--seed``, ``--resume``, ...)."""

    seed: int = field(0, "seed for python, numpy, torch (offset by rank)")
    device: str = field("auto", "auto | cpu | cuda")
    threads: int = field(0, "torch CPU threads per process (0: torch's default)")
    runs_root: str = field("runs", "where run folders go (NNNNN-<tag>, never overwritten)")
    resume: str = field("", "checkpoint to resume from (a run's checkpoints/last.pt)")
    export_to: str = field("", "write <path>.safetensors + <path>.json (model card) at the end")


def parse_configs(
    sections: dict[str, tuple[type, str]], argv: list[str] | None = None, description: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The command line of ``sections`` ({name: (dataclass, flag prefix)}) plus ``--dry-run``:
    ({name: dataclass instance}, dry_run)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for cls, prefix in sections.values():
        add_dataclass_args(ap, cls, prefix)
    ap.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    args = ap.parse_args(argv)
    return {name: from_args(cls, args, prefix) for name, (cls, prefix) in sections.items()}, args.dry_run


def resolved(**sections: Any) -> dict[str, dict[str, Any]]:
    """The resolved config as written to config.json and printed by --dry-run: one dict per section; a
    section given as a tuple of dataclasses is their fields together, in order."""
    out = {}
    for name, cfgs in sections.items():
        parts = cfgs if isinstance(cfgs, tuple) else (cfgs,)
        out[name] = {k: v for c in parts for k, v in dataclasses.asdict(c).items()}
    return out
