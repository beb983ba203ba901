"""The config reference (docs/config.md), generated from the dataclasses themselves: every
section and key with its type, default and the comment written beside it, so the
document cannot drift from the code (tests/test_docs.py compares the two).

    python -m ctt.config_reference > docs/config.md      (make docs)
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
import typing

from ctt.config import JOB_SECTIONS, Config

HEADER = """# Config reference

Every job takes `--config FILE` (YAML, see `configs/`) and `section.key=value` overrides;
defaults < file < overrides, and an unknown key or a wrong type is an error (exit 2).
The defaults are the paper's settings. This page is generated from the dataclasses
(`make docs`); `jobs/<job>.py --print-config` prints the resolved sections a job reads.

[Back to the README](../README.md)

| section | read by |
|---|---|
"""


def field_comments(cls: type) -> dict[str, str]:
    """name -> the comment on its line and the comment-only lines right below that continue it."""
    source = inspect.getsource(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    on_row = {i: line.split(":", 1)[0].strip() for i, line in enumerate(source.splitlines(), 1)
              if line.split(":", 1)[0].strip() in names}
    out: dict[str, str] = {}
    current, last = "", -1
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        row, text = tok.start[0], tok.string.lstrip("#").strip()
        if row in on_row:
            current, last = on_row[row], row
            out[current] = text
        elif current and row == last + 1 and tok.line.strip().startswith("#"):
            out[current] += " " + text
            last = row
        else:
            current = ""
    return out


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return ""
    return "`" + (repr(value) if not isinstance(value, str) else (value or '""')) + "`"


def _section(prefix: str, obj: type) -> list[str]:
    hints = typing.get_type_hints(obj)
    comments = field_comments(obj)
    nested: list[tuple[str, type]] = []
    lines = [f"## `{prefix}`", ""]
    if obj.__doc__ and not obj.__doc__.startswith(obj.__name__ + "("):
        lines += [" ".join(obj.__doc__.split()), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(obj):
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            nested.append((f"{prefix}.{f.name}", typ))
            continue
        meaning = comments.get(f.name, "").replace("|", "\\|")
        lines.append(f"| `{f.name}` | {typ.__name__} | {_default(f).replace('|', chr(92) + '|')} | {meaning} |")
    lines.append("")
    for p, t in nested:
        lines += _section(p, t)
    return lines


def render() -> str:
    readers = {s: sorted(j for j, secs in JOB_SECTIONS.items() if s in secs) for s in (f.name for f in
                                                                                       dataclasses.fields(Config))}
    table = "".join(f"| `{s}` | {', '.join(f'`jobs/{j}.py`' for j in jobs) or 'report only'} |\n"
                    for s, jobs in readers.items())
    body: list[str] = []
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        body += _section(f.name, hints[f.name])
    return HEADER + table + "\n" + "\n".join(body).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
