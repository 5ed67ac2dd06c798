"""The request every benchmark sends: a valid JWT and a 4 KB OpenAI-style chat body."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parent.parent
KEY = ROOT / "deploy" / "envoy" / "keys" / "demo-signing-key.pem"
PATH = "/v1/chat/completions"

PARAGRAPH = (
    "Our quarterly planning notes cover the migration of the billing service to the new "
    "cluster, the on-call rota for December, and the open questions about caching. "
)


def token() -> str:
    """A JWT from the demo issuer, valid for two hours."""
    now = int(time.time())
    claims = {
        "iss": "https://idp.example.com",
        "aud": "llm-gateway",
        "sub": "bench-agent",
        "groups": ["ml"],
        "scope": "chat",
        "iat": now,
        "exp": now + 7200,
    }
    return jwt.encode(claims, KEY.read_bytes(), algorithm="RS256", headers={"kid": "demo-2026"})


def chat_body(size: int = 4096) -> bytes:
    """An OpenAI chat completion request of about `size` bytes, free of findings."""
    text = ""
    while len(text) < size - 400:
        text += PARAGRAPH
    body = {
        "model": "gpt-4o",
        "max_tokens": 512,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a concise assistant for the platform team."},
            {"role": "user", "content": "Summarise these notes in five bullet points:\n" + text},
        ],
    }
    return json.dumps(body).encode()


def headers(bearer: str) -> dict[str, str]:
    """HTTP headers of the request."""
    return {"authorization": f"Bearer {bearer}", "content-type": "application/json"}
