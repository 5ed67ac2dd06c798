"""The request every benchmark sends: a valid JWT and a 4 KB OpenAI-style chat body."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.tokens import AUDIENCE, demo_token

PATH = "/v1/chat/completions"

PARAGRAPH = (
    "Our quarterly planning notes cover the migration of the billing service to the new "
    "cluster, the on-call rota for December, and the open questions about caching. "
)


def token() -> str:
    """A JWT from the demo issuer for the LLM gateway, valid for two hours."""
    expires = int(time.time()) + 7200
    return demo_token(aud=AUDIENCE, sub="bench-agent", groups=["ml"], scope="chat", exp=expires)


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


def check_request(body: bytes | None = None, bearer: str | None = None) -> Any:
    """The benchmark's chat CheckRequest (the one h2load sends straight at gRPC)."""
    from authz.request_file import to_check_request

    return to_check_request(
        {
            "method": "POST",
            "path": PATH,
            "headers": headers(bearer or token()),
            "body": (body or chat_body()).decode(),
            "context": {"policy": "chat"},
            "source": {"address": "10.0.0.7", "port": 40000},
        }
    )
