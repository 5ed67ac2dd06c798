"""Shared helpers for unit tests: write a policy file, decide a described request."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from authz.decision import Decision
from authz.policy.compiler import CompiledConfig, load
from authz.request_file import to_check_request
from authz.service import check

ENGINES = ("cel-cpp", "cel-python")


def write_policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    """Write a dedented policy file and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def compile_policy(tmp_path: Path, text: str, engine: str) -> CompiledConfig:
    """Write and compile a policy on the given engine."""
    return load(str(write_policy(tmp_path, text)), engine)


def decide_request(config: CompiledConfig, request: dict[str, Any]) -> Decision:
    """Decide a request described as for `authz check`."""
    return check(config, to_check_request(request))


def remote_jwks_policy(
    tmp_path: Path, uri: str, interval: float = 0.0, timeout: float = 0.3, name: str = "policy.yaml"
) -> CompiledConfig:
    """A policy requiring a token from the test issuer, its keys fetched from `uri`."""
    from tests.support import tokens

    text = f"""
        identity:
          jwt:
            - issuer: {tokens.ISSUER}
              audiences: [{tokens.AUDIENCE}]
              jwks_uri: {uri}
              refresh_seconds: 300
              fetch_timeout_seconds: {timeout}
              min_refresh_interval_seconds: {interval}
        policies:
          - {{name: p, require_identity: true, rules: []}}
    """
    return load(str(write_policy(tmp_path, text, name)), "cel-cpp")
