"""Fixtures the end-to-end tests share: the shipped Envoy config with authz (example pack)
in front of the echo upstream or the SDK upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import EXAMPLE_POLICY
from tests.support.sdk_upstream import SdkStack, SdkUpstream, start_sdk_upstream


@pytest.fixture
def sdk_upstream(tmp_path: Path) -> Iterator[SdkUpstream]:
    """The FastMCP + provider-shaped upstream."""
    handle = start_sdk_upstream(tmp_path / "sdk-upstream")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sdk_stack(sdk_upstream: SdkUpstream, envoy_factory: Any, authz_factory: Any) -> SdkStack:
    """The shipped Envoy config in front of authz (example pack) and the SDK upstream."""
    authz = authz_factory(EXAMPLE_POLICY)
    return envoy_factory(authz.port, sdk_upstream.port), sdk_upstream


@pytest.fixture
def stack(upstream: Any, envoy_factory: Any, authz_factory: Any) -> tuple[Any, Any]:
    """The shipped Envoy config in front of authz (example pack) and the echo upstream."""
    authz = authz_factory(EXAMPLE_POLICY)
    return envoy_factory(authz.port, upstream.port), upstream
