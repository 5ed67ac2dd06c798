"""Where the shipped files the tests run against live, as absolute paths (tests never
depend on the directory pytest was started from)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_ENVOY_DIR = REPO_ROOT / "deploy" / "envoy"
ENVOY_CONFIG = DEPLOY_ENVOY_DIR / "envoy.yaml"
EXAMPLE_POLICY = DEPLOY_ENVOY_DIR / "policies" / "example.yaml"
DEMO_KEYS = DEPLOY_ENVOY_DIR / "keys"
