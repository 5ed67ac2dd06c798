"""This service as an OAuth 2.1 resource server, as MCP authorization (2025-06-18) asks.

- RFC 9728: `GET /.well-known/oauth-protected-resource` and
  `GET /.well-known/oauth-protected-resource<path of the resource>` are answered by authz
  itself with the metadata document (`resource`, `authorization_servers`,
  `scopes_supported`, `bearer_methods_supported`), and every 401 challenge for the resource
  names that document (`resource_metadata="..."`).
- RFC 8707: a bearer token (JWT, jwt_authn payload, introspected) presented to the resource
  must name the resource in its `aud`; a token issued for another resource is refused as
  `bad_audience` (401 `invalid_token`), so a token is never passed through to where it was
  not meant to go.
- RFC 6750 3.1: a rule with `insufficient_scope: [...]` answers 403 with
  `error="insufficient_scope", scope="..."`.

Which requests are for the resource: those whose path is the resource's path or below it
(any path when the resource has none); the host is not compared, since behind Envoy it is
whatever the client used.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from authz.config.identity import ProtectedResourceConfig

WELL_KNOWN = "/.well-known/oauth-protected-resource"
METADATA_METHODS = frozenset({"GET", "HEAD"})


def resource_path(resource: str) -> str:
    """The path of a resource identifier, without a trailing slash ("" for none)."""
    return urlsplit(resource).path.rstrip("/")


class ProtectedResource:
    """The configured resource: its metadata document, its URL and the paths it covers."""

    def __init__(self, config: ProtectedResourceConfig) -> None:
        self.config = config
        parts = urlsplit(config.resource)
        self.path = resource_path(config.resource)
        # RFC 9728 3.1: the well-known segment goes between the host and the path.
        self.metadata_url = f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{self.path}"
        self.metadata_paths = frozenset({WELL_KNOWN, f"{WELL_KNOWN}{self.path}"})
        document: dict[str, object] = {
            "resource": config.resource,
            "authorization_servers": list(config.authorization_servers),
        }
        if config.scopes_supported:
            document["scopes_supported"] = list(config.scopes_supported)
        document["bearer_methods_supported"] = ["header"]
        self.document = json.dumps(document, indent=2) + "\n"

    def is_metadata_request(self, method: str, path: str) -> bool:
        """A GET (or HEAD) of the metadata document."""
        return method in METADATA_METHODS and path in self.metadata_paths

    def covers(self, path: str) -> bool:
        """Whether a request path is for this resource."""
        return not self.path or path == self.path or path.startswith(f"{self.path}/")

    def accepts(self, audiences: tuple[str, ...]) -> bool:
        """RFC 8707 audience binding: the token names this resource."""
        return self.config.resource in audiences


def scope_challenge(scopes: tuple[str, ...], metadata_url: str = "") -> str:
    """The RFC 6750 3.1 challenge of a 403 for want of these scopes (naming the resource's
    metadata document when there is one)."""
    text = f'Bearer realm="authz", error="insufficient_scope", scope="{" ".join(scopes)}"'
    return f'{text}, resource_metadata="{metadata_url}"' if metadata_url else text
