"""YAML files read the one way: PyYAML's safe loader, on libyaml's C parser
when PyYAML was built with it.

Why: the pure-Python parser took about 45 ms for the SOP file, read at every
start of the bot (and of every test's bot); the C parser reads it in about
6 ms into the same values. Both are safe loaders: no Python objects."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """The document in `text`; raises yaml.YAMLError when it is not YAML."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
