"""Who may send: API keys from request headers → the project their data belongs to.

Comes in: the `authorization` (`Bearer KEY`) and `x-api-key` values of a gRPC call's metadata
or an HTTP request's headers. Goes out: the key's project, None when auth is off, or
`Unauthenticated` (→ gRPC UNAUTHENTICATED / HTTP 401), raised before the request is parsed, so a
caller without a key gets nothing stored and costs us almost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from store.keys import KeyRing


class Unauthenticated(Exception):
    """No key, or a key that is unknown or revoked."""


def api_key_from(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The key in `authorization: Bearer KEY` or `x-api-key: KEY` (header names in any case)."""
    found = None
    for name, value in pairs:
        name = name.lower()
        if name == "authorization" and isinstance(value, str):
            scheme, _, credentials = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == "x-api-key" and isinstance(value, str) and value.strip():
            found = value.strip()
    return found


class Authenticator:
    """`keys` None: auth is off and every request is let through with no project imposed."""

    def __init__(self, keys: KeyRing | None) -> None:
        self.keys = keys

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    def project(self, headers: Iterable[tuple[str, str]]) -> str | None:
        if self.keys is None:
            return None
        key = api_key_from(headers)
        if key is None:
            raise Unauthenticated("an API key is required: send `authorization: Bearer KEY` or `x-api-key: KEY`")
        project = self.keys.project_for(key)
        if project is None:
            raise Unauthenticated("API key is unknown or revoked; create one with `vigil keys create --project NAME`")
        return project
