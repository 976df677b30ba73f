"""Prompt versions: a file → a stored version, a version → the text it renders for one call.

Comes in: a prompt file (TOML with `template`, optional `role`, `system`, `model`, `[params]`, or
plain text that is the template) and a call's template variables. Goes out: `PromptVersion`
rows in the `prompts` table (`push_prompt`), and rendered text (`render`). Must not: change a
stored version (versions are immutable; pushing different content under an existing version is
an error) or guess a missing variable.

Versions seen in traces (`llm_calls.prompt_name/prompt_version/prompt_template`) need no push:
the named query `prompt_versions` lists them beside the pushed ones, and `find_prompt` falls back
to the template a trace carried. Nothing is copied, so the registry never disagrees with the data.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from store.catalog import fetch
from store.location import Destination, append_rows
from store.schema import PROMPTS_SCHEMA

_VARIABLE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
_FILE_KEYS = {"template", "role", "system", "model", "params"}


class PromptError(ValueError):
    """A prompt file or version that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class PromptVersion:
    name: str
    version: str
    template: str
    role: str = "user"
    system_prompt: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "registry"  # registry | traces


def render(template: str, variables: dict[str, Any]) -> str:
    """`{name}` → the variable's text; `{{` and `}}` are literal braces; other braces stay as they are."""
    missing = []

    def substitute(match: re.Match) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
        name = match.group(1)
        if name not in variables:
            missing.append(name)
            return match.group(0)
        value = variables[name]
        return value if isinstance(value, str) else json.dumps(value)

    text = _VARIABLE.sub(substitute, template)
    if missing:
        raise PromptError(f"template variable(s) {', '.join(sorted(set(missing)))} not in the call's variables")
    return text


def load_prompt_file(path: Path, name: str, version: str, **flags: Any) -> PromptVersion:
    """A `.toml` prompt file, or any other file as the plain template; `flags` (role, system, model) win."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PromptError(f"cannot read prompt file {path}: {exc.strerror}") from None
    data: dict[str, Any] = {"template": text}
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PromptError(f"{path} is not valid TOML: {exc}") from None
        unknown = set(data) - _FILE_KEYS
        if unknown:
            raise PromptError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(_FILE_KEYS)}")
    data |= {k: v for k, v in flags.items() if v is not None}
    if not isinstance(data.get("template"), str) or not data["template"].strip():
        raise PromptError(f"{path}: the prompt needs a non-empty `template`")
    if data.get("role", "user") not in ("user", "system"):
        raise PromptError(f"{path}: role must be user or system, got {data['role']!r}")
    if not isinstance(data.get("params", {}), dict):
        raise PromptError(f"{path}: [params] must be a table of request parameters")
    return PromptVersion(
        name=name,
        version=version,
        template=data["template"],
        role=data.get("role", "user"),
        system_prompt=data.get("system"),
        model=data.get("model"),
        params=dict(data.get("params", {})),
    )


def push_prompt(store: Destination, con: duckdb.DuckDBPyConnection, prompt: PromptVersion) -> bool:
    """Store `prompt`; False when the same content is already stored, PromptError when different content is."""
    existing = find_registered(con, prompt.name, prompt.version)
    if existing is not None:
        if existing == prompt:
            return False
        raise PromptError(
            f"prompt {prompt.name} version {prompt.version} already exists with other content; "
            "versions are immutable: push it under a new --version"
        )
    now = time.time_ns()
    row = {
        "name": prompt.name,
        "version": prompt.version,
        "template": prompt.template,
        "role": prompt.role,
        "system_prompt": prompt.system_prompt,
        "model": prompt.model,
        "params": json.dumps(prompt.params, sort_keys=True),
        "created_at": now,
        "received_at": now,
    }
    append_rows(store, "prompts", pa.Table.from_pylist([row], PROMPTS_SCHEMA), tag="prompt")
    return True


def find_registered(con: duckdb.DuckDBPyConnection, name: str, version: str) -> PromptVersion | None:
    rows = fetch(con, "SELECT * FROM prompts WHERE name = ? AND version = ?", [name, version]).to_pylist()
    if not rows:
        return None
    row = rows[0]
    return PromptVersion(
        name=row["name"],
        version=row["version"],
        template=row["template"],
        role=row["role"] or "user",
        system_prompt=row["system_prompt"],
        model=row["model"],
        params=json.loads(row["params"] or "{}"),
    )


def find_prompt(con: duckdb.DuckDBPyConnection, name: str, version: str) -> PromptVersion | None:
    """A pushed version, else the template the newest trace of that version carried."""
    found = find_registered(con, name, version)
    if found is not None:
        return found
    rows = fetch(
        con,
        "SELECT prompt_template FROM llm_calls WHERE prompt_name = ? AND prompt_version = ? "
        "AND prompt_template IS NOT NULL ORDER BY start_time DESC LIMIT 1",
        [name, version],
    ).to_pylist()
    if not rows:
        return None
    return PromptVersion(name=name, version=version, template=rows[0]["prompt_template"], source="traces")
