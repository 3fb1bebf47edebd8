"""The sandbox's own French texts (`templates/sandbox/textes.toml`), rendered like core's."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from typing import Any

from core.texts import TEMPLATES_DIR, environment

CATALOGUE = TEMPLATES_DIR / "sandbox" / "textes.toml"


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, str]:
    with CATALOGUE.open("rb") as fh:
        data = tomllib.load(fh)
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            else:
                flat[name] = str(value)

    walk("", data)
    return flat


def st(key: str, /, **params: Any) -> str:
    """The sandbox text `key` with its parameters; an unknown key is a bug (KeyError)."""
    return environment().from_string(_catalogue()[key]).render(**params)
