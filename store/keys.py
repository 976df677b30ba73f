"""Project API keys: created, listed and revoked by the CLI, checked by the collector.

A key is `vgl_` + 43 characters of URL-safe base64 (32 random bytes from `secrets`). Only its
SHA-256 is stored: a 256-bit random key cannot be guessed or brute-forced from its hash, so a
slow password hash (bcrypt, scrypt, argon2) would add nothing but latency on every request.
The file (`<data_dir>/keys.json` unless `[auth] keys_file` says otherwise) is JSON, written to a
temporary file with mode 0600 and renamed into place, so readers never see half a file.
Must not: store or log a key itself; it is shown once, by `create_key`'s caller.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from store.config import Config, ConfigError

KEY_PREFIX = "vgl_"


@dataclass(frozen=True)
class ApiKey:
    id: str  # short public id, for `list` and `revoke`
    project: str
    name: str
    sha256: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def keys_path(config: Config) -> Path:
    return Path(config.auth.keys_file or Path(config.store.data_dir) / "keys.json")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> list[ApiKey]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read API keys from {path}: {exc}; fix or remove the file") from None
    return [ApiKey(**entry) for entry in document.get("keys", [])]


def create_key(path: Path, project: str, name: str = "") -> tuple[ApiKey, str]:
    """Add a key for `project`; returns its record and the key itself (never stored)."""
    if not project.strip():
        raise ConfigError("a key needs a project: --project NAME")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    entry = ApiKey(secrets.token_hex(4), project.strip(), name, hash_key(key), time.time())
    _save(path, [*load_keys(path), entry])
    return entry, key


def revoke_key(path: Path, key_id: str) -> ApiKey:
    keys = load_keys(path)
    for index, entry in enumerate(keys):
        if entry.id == key_id:
            if entry.active:
                keys[index] = entry = ApiKey(**(asdict(entry) | {"revoked_at": time.time()}))
                _save(path, keys)
            return entry
    raise ConfigError(f"no API key with id {key_id!r}; `vigil keys list` shows them")


def _save(path: Path, keys: list[ApiKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": [asdict(k) for k in keys]}, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class KeyRing:
    """Active keys by hash, re-read whenever the file changes (so a revocation needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._projects: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        # A file rewritten mid-read is caught by os.replace: we read the old or the new one whole.
        self._projects = {k.sha256: k.project for k in load_keys(self.path) if k.active}
        self._stamp = stamp

    def __len__(self) -> int:
        return len(self._projects)

    def project_for(self, key: str | None) -> str | None:
        """The project of an active key, else None. One stat per call notices edits at once."""
        if not key:
            return None
        with contextlib.suppress(ConfigError):  # a broken file keeps the keys we knew; the CLI says why
            self.reload()
        return self._projects.get(hash_key(key))
