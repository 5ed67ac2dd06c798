"""API keys: a YAML file of SHA-256 hashes, each with a name and attributes.

    keys:
      - name: ci-bot
        sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
        attributes: {groups: [ci], scopes: [read], team: platform}

Only hashes are stored; a presented key is hashed and compared with every stored hash in
constant time (hmac.compare_digest), so neither timing nor the file reveals a key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from authz.config.identity import ApiKey
from authz.config.reader import Reader
from authz.config.source import load_yaml, plain
from authz.identity.model import Identity, strings

HEX64 = re.compile(r"^[0-9a-f]{64}$")
KEY_FIELDS = {"name", "sha256", "attributes"}


def load_api_keys(path: str, reader: Reader) -> list[ApiKey]:
    """Read the key file; issues (with this file's positions) go to the caller's reader."""
    data, source = load_yaml(path)
    own = Reader(source)
    top = own.mapping(data, None, "the API key file", {"keys"})
    raw_keys = top.get("keys")
    if not isinstance(raw_keys, list):
        own.issue(None, "keys must be a list")
        raw_keys = []
    keys: list[ApiKey] = []
    names: set[str] = set()
    for raw in raw_keys:
        entry = own.mapping(raw, None, "an API key", KEY_FIELDS)
        name = own.text(entry.get("name"), None, "key name")
        digest = own.text(entry.get("sha256"), name, "sha256")
        if digest is not None and not HEX64.match(digest.lower()):
            own.issue(digest, "sha256 must be 64 hex characters (the SHA-256 of the key)")
            digest = None
        attributes = entry.get("attributes", {})
        if not isinstance(attributes, dict):
            own.issue(name, "attributes must be a mapping")
            attributes = {}
        if name is not None and name in names:
            own.issue(name, f"duplicate key name '{name}'")
        if name is not None and digest is not None:
            names.add(name)
            keys.append(ApiKey(str(name), bytes.fromhex(digest), plain(attributes)))
    reader.issues.extend(own.issues)
    return keys


class ApiKeyStore:
    """Looks a presented key up by hash, in constant time over the whole store."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = keys

    def lookup(self, presented: str) -> ApiKey | None:
        """The stored key matching `presented`, or None."""
        digest = hashlib.sha256(presented.encode("utf-8", errors="surrogateescape")).digest()
        found = None
        for key in self.keys:  # no early exit: every hash is compared
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def key_identity(key: ApiKey) -> Identity:
    """An authenticated Identity for a known key (the key itself is never exposed)."""
    attrs = key.attributes
    return Identity(
        authenticated=True,
        method="api_key",
        subject=key.name,
        groups=strings(attrs.get("groups")),
        scopes=strings(attrs.get("scopes")),
        claims=attrs,
        api_key=key.name,
    )
