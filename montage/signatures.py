"""The options' two faces: command-line arguments (argparse) and API signatures and docstrings,
both made from the fields of :mod:`montage.options`."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import MISSING, fields


def add_arguments(parser, cls):
    """Add ``cls``'s options to an argparse parser: its own first, then the model and output groups."""
    groups = {}
    own = [f for f in fields(cls) if not f.metadata.get("group")]
    grouped = [f for f in fields(cls) if f.metadata.get("group")]
    for f in own + grouped:
        md = f.metadata
        where = parser
        if md["group"]:
            if md["group"] not in groups:
                groups[md["group"]] = parser.add_argument_group(md["group"])
            where = groups[md["group"]]
        kw = dict(md["cli"])
        if kw.get("nargs"):   # --layer a b --layer c: all three (from_arguments fills the default in)
            kw.update(action="extend", default=None)
        elif kw.get("action") not in ("store_true", "store_false"):
            kw.setdefault("default", f.default)
        hidden = f.name in getattr(cls, "inapplicable", ())   # still parsed, to be refused in one line
        where.add_argument(md["flag"] or "--" + f.name.replace("_", "-"), dest=f.name,
                           help=argparse.SUPPRESS if hidden else md["help"], **kw)


def from_arguments(cls, args: argparse.Namespace):
    """The options object for parsed command-line ``args``."""
    return cls(**{f.name: f.default if getattr(args, f.name) is None else getattr(args, f.name)
                  for f in fields(cls)})


def api(cls, positional):
    """Give an API function ``fn(*positional, **options)`` the signature and docs of ``cls``."""
    def wrap(fn):
        by_name = {f.name: f for f in fields(cls)}
        skip = getattr(cls, "inapplicable", ())
        order = list(positional) + [n for n in by_name if n not in positional and n not in skip]
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD if n in positional
                                    else inspect.Parameter.KEYWORD_ONLY,
                                    default=by_name[n].default if by_name[n].default is not MISSING
                                    else inspect.Parameter.empty, annotation=by_name[n].type)
                  for n in order]
        fn.__signature__ = inspect.signature(fn).replace(parameters=params)
        lines = ["", "    Options", "    -------"]
        for n in order:
            f = by_name[n]
            lines += [f"    {n} : {f.type}, default {f.default!r}",
                      "        " + (f.metadata["doc"] or f.metadata["help"]).replace("%(default)s", str(f.default))]
        fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + "\n".join(lines) + "\n"
        return fn
    return wrap
