"""Every French sentence lives in `templates/`; this module renders the short ones.

Short texts (error messages, labels, table headers) are keyed entries of
`templates/texts/*.toml` (one file per area), rendered with jinja2 so they can take parameters.
Longer texts (mails, bot pages, PDFs, CLI tables) are jinja2 files rendered by `render()`.
"""

from __future__ import annotations

import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, meta

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=StrictUndefined,
        # Templates ship with the code: no need to stat every file at every render.
        auto_reload=False,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date_fr"] = format_date_fr
    env.filters["heures"] = format_heures
    env.filters["date_iso_fr"] = lambda iso: format_date_fr(date.fromisoformat(iso)) if iso else ""
    return env


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, str]:
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            else:
                flat[name] = str(value)

    # One file per area (cli.toml, imports.toml …), merged; a key defined twice is a bug.
    for path in sorted((TEMPLATES_DIR / "texts").glob("*.toml")):
        with path.open("rb") as fh:
            before = len(flat)
            data = tomllib.load(fh)
            keys = sum(1 for _ in _leaves(data))
            walk("", data)
            if len(flat) != before + keys:
                raise RuntimeError(f"duplicate text key in {path.name}")
    return flat


def _leaves(node: dict[str, Any]) -> Any:
    for value in node.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield value


@lru_cache(maxsize=512)
def _compiled(key: str) -> tuple[Template, bool]:
    """The template of `key`, and whether it uses one of jinja2's globals (`range`, …)."""
    env = environment()
    parsed = env.parse(_catalogue()[key])
    names = meta.find_undeclared_variables(parsed)
    return env.from_string(parsed), bool(names & env.globals.keys())


def t(key: str, /, **params: Any) -> str:
    """The French text of `key`, with its parameters filled in. An unknown key is a bug."""
    template, uses_globals = _compiled(key)
    if uses_globals:
        return template.render(**params)
    # What `render` does, without merging jinja2's globals into each new context: that
    # merge was half the cost of a short text, and reports word tens of thousands of them
    # (the anomalies' details).
    context = template.new_context(params, shared=True)
    try:
        return template.environment.concat(template.root_render_func(context))
    except Exception:
        return template.environment.handle_exception()


def has(key: str) -> bool:
    return key in _catalogue()


def render(template: str, /, **params: Any) -> str:
    return environment().get_template(template).render(**params)


def format_date_fr(value: Any) -> str:
    if value is None:
        return ""
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def format_heures(value: Any) -> str:
    if value is None:
        return ""
    v = float(value)
    return f"{v:g}".replace(".", ",") + " h"
