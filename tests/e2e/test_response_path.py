"""The response path through a real Envoy: authz as Envoy's External Processor judges what
comes back with the example policies' `response_rules` (llm-external on /v1/, mcp on /mcp).

The upstream here is a test server in this process that answers each request with the
scenario its `x-answer` header names: a clean completion, one holding a credential, one
holding an email address, an MCP tool result, an SSE stream with a credential split across
two events, or an answer held back until the test lets it go.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.support.client import scrape
from tests.support.ext_proc import FAKE_AWS_KEY, completion
from tests.support.otlp import OtlpReceiver
from tests.support.paths import EXAMPLE_POLICY
from tests.support.ports import free_port
from tests.support.tokens import demo_token

CLEAN = "The capital of France is Paris. It has been since 987."
EXT_PROC_SPAN = "async envoy.service.ext_proc.v3.ExternalProcessor.Process egress"
PROMPT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me about Paris"}]}


def chunk(text: str) -> bytes:
    """One OpenAI streaming event."""
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(data)}\n\n".encode()


class Answers(BaseHTTPRequestHandler):
    """Answers by the `x-answer` scenario; records what each request carried."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, str]]] = []
    release: ClassVar[threading.Event] = threading.Event()
    arrived: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        """Every scenario is a POST."""
        length = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        answer = self.headers.get("x-answer", "clean")
        if answer == "sse-split":
            self._sse()
            return
        if answer == "held":
            self.arrived.set()
            self.release.wait(120)
        texts = {
            "clean": CLEAN,
            "credential": f"Sure, use the key {FAKE_AWS_KEY} to sign in.",
            "email": "Write to jane.doe@example.com, she runs the archive.",
            "held": f"A late answer with {FAKE_AWS_KEY} in it.",
        }
        if answer == "mcp":
            body: Any = {
                "jsonrpc": "2.0",
                "id": request.get("id"),
                "result": {
                    "content": [
                        {"type": "text", "text": "Ticket 7: customer jane.doe@example.com"},
                        {"type": "text", "text": f"debug: aws key {FAKE_AWS_KEY}"},
                    ],
                    "isError": False,
                },
            }
        else:
            body = completion(texts[answer])
        self._send(json.dumps(body).encode(), "application/json")

    def _send(self, raw: bytes, content_type: str) -> None:
        try:
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except ConnectionError:
            pass  # Envoy gave up on this answer (authz down): nothing to send it to

    def _sse(self) -> None:
        """A stream: enough clean text to pass the hold-back, a pause until the client
        has read it, then a credential split over two events, then more."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        intro = [chunk("Paris is the capital of France. ") for _ in range(12)]
        self._chunk(b"".join(intro))
        self.arrived.set()
        self.release.wait(120)  # the client has read the first events: they were not held
        for part in (
            "Here is the key: " + FAKE_AWS_KEY[:8],
            FAKE_AWS_KEY[8:] + " and more.",
            "Bye",
        ):
            self._chunk(chunk(part))
            time.sleep(0.05)
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def answers() -> Iterator[ThreadingHTTPServer]:
    """The scenario upstream on a free port."""
    Answers.seen = []
    Answers.release = threading.Event()
    Answers.arrived = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Answers)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        Answers.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def stack(answers: ThreadingHTTPServer, envoy_factory: Any, authz_factory: Any) -> Any:
    """Envoy (the shipped config, ext_proc included) in front of authz (example policies)."""
    authz = authz_factory(EXAMPLE_POLICY)
    envoy = envoy_factory(authz.port, answers.server_address[1])
    return envoy, authz


def post(
    envoy: Any, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One POST through Envoy with a plain HTTP/1.1 client (the body read to its end)."""
    connection = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=120)
    try:
        raw = json.dumps(body).encode()
        connection.request("POST", path, raw, {"content-type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def log_lines(authz: Any, decision_id: str) -> list[dict[str, Any]]:
    """The decision-log lines carrying this decision id (request and response phases)."""
    deadline = time.monotonic() + 60
    while True:
        lines = [json.loads(x) for x in authz.log_text().splitlines() if x.startswith("{")]
        found = [x for x in lines if x.get("decision_id") == decision_id]
        if any(x.get("phase") == "response" for x in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_clean_completion_passes_unchanged_with_its_usage_as_a_header(stack: Any) -> None:
    envoy, authz = stack
    status, headers, body = post(envoy, "/v1/chat/completions", PROMPT, {"x-answer": "clean"})
    assert status == 200, body
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == completion(CLEAN)
    assert body == json.dumps(completion(CLEAN)).encode()  # byte for byte
    assert headers["x-usage-output-tokens"] == "12"
    # authz asked the upstream for a body it can read
    assert "accept-encoding" not in Answers.seen[-1]
    samples = scrape(authz)
    usage = 'authz_response_decisions_total{decision="allow",policy="llm-external",rule="usage"}'
    assert samples[usage] == 1.0


def test_a_credential_in_a_completion_is_replaced_by_the_rules_502(stack: Any) -> None:
    envoy, authz = stack
    status, _, body = post(envoy, "/v1/chat/completions", PROMPT, {"x-answer": "credential"})
    assert status == 502
    assert FAKE_AWS_KEY.encode() not in body
    denied = json.loads(body)
    assert denied["error"] == "the model's answer held a credential"
    request_line, response_line = log_lines(authz, denied["decision_id"])
    assert request_line["decision"] == "allow" and "phase" not in request_line
    assert response_line["phase"] == "response"
    assert (response_line["decision"], response_line["rule"]) == ("deny", "credential-in-answer")
    assert response_line["status"] == 502 and response_line["upstream_status"] == 200


def test_an_email_is_redacted_and_the_json_stays_intact(stack: Any) -> None:
    envoy, _ = stack
    status, headers, body = post(envoy, "/v1/chat/completions", PROMPT, {"x-answer": "email"})
    assert status == 200, body
    assert int(headers["content-length"]) == len(body)
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == ("Write to [EMAIL], she runs the archive.")
    assert answer["usage"] == completion("")["usage"]  # the rest is as the model sent it
    assert headers["x-usage-output-tokens"] == "12"


def test_an_mcp_tool_result_is_redacted(stack: Any) -> None:
    envoy, _ = stack
    call = {
        "jsonrpc": "2.0",
        "id": 41,
        "method": "tools/call",
        "params": {"name": "search_tickets", "arguments": {"q": "refund"}},
    }
    token = demo_token(sub="agent-support")
    headers = {"authorization": f"Bearer {token}", "x-answer": "mcp"}
    status, _, body = post(envoy, "/mcp", call, {**headers, "accept": "application/json"})
    assert status == 200, body
    result = json.loads(body)
    assert (result["jsonrpc"], result["id"]) == ("2.0", 41)
    texts = [item["text"] for item in result["result"]["content"]]
    assert texts == ["Ticket 7: customer [EMAIL]", "debug: aws key [AWS_ACCESS_KEY]"]


def test_a_credential_split_across_two_sse_events_never_reaches_the_client(stack: Any) -> None:
    envoy, authz = stack
    connection = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=120)
    raw = json.dumps({**PROMPT, "stream": True}).encode()
    headers = {"content-type": "application/json", "x-answer": "sse-split"}
    connection.request("POST", "/v1/chat/completions", raw, headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("content-type") == "text/event-stream"
    # The first events come through while the upstream is still waiting: the stream is
    # judged as it passes, not buffered whole.
    first = response.read1(65536)
    assert first.startswith(b"data: ") and b"Paris is the capital" in first
    Answers.release.set()
    received = first + response.read()
    connection.close()
    assert FAKE_AWS_KEY.encode() not in received
    assert FAKE_AWS_KEY[:8].encode() not in received  # not even its first half
    assert FAKE_AWS_KEY[8:].encode() not in received
    assert b"Bye" not in received and b"[DONE]" not in received  # cut, never continued
    *_, last = [e for e in received.split(b"\n\n") if e.strip()]
    assert last.startswith(b"event: error\ndata: ")
    error = json.loads(last.split(b"data: ", 1)[1])
    assert error["error"] == "the model's answer held a credential"
    (line,) = [x for x in log_lines(authz, error["decision_id"]) if x.get("phase")]
    assert (line["decision"], line["rule"], line["stream"]["cut"]) == (
        "deny",
        "credential-in-answer",
        True,
    )


def test_the_openai_sdk_raises_on_the_error_event_and_never_sees_the_key(stack: Any) -> None:
    import openai

    envoy, _ = stack
    client = openai.OpenAI(base_url=envoy.url("/v1"), api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Tell me about Paris"}],
        stream=True,
        extra_headers={"x-answer": "sse-split"},
    )
    texts = []
    with pytest.raises(openai.APIError):
        for chunk_ in stream:
            texts.append(chunk_.choices[0].delta.content or "")
            Answers.release.set()  # the first events came while the upstream waited
    assert texts and texts[0].startswith("Paris is the capital")
    seen = "".join(texts)
    assert FAKE_AWS_KEY[:8] not in seen and FAKE_AWS_KEY[8:] not in seen


def test_authz_down_means_the_client_never_gets_the_body(stack: Any) -> None:
    envoy, authz = stack
    outcome: dict[str, Any] = {}

    def call() -> None:
        outcome["reply"] = post(envoy, "/v1/chat/completions", PROMPT, {"x-answer": "held"})

    client = threading.Thread(target=call)
    client.start()
    assert Answers.arrived.wait(120), "the request never reached the upstream"
    authz.proc.kill()  # the request was allowed; now nobody can judge the answer
    authz.proc.wait()
    Answers.release.set()
    client.join(120)
    status, _, body = outcome["reply"]
    assert status == 403  # the filter's status_on_error, as ext_authz's
    assert FAKE_AWS_KEY.encode() not in body and b"late answer" not in body


def test_the_response_span_is_in_the_requests_trace(
    answers: ThreadingHTTPServer,
    envoy_factory: Any,
    authz_factory: Any,
    otlp_receiver: OtlpReceiver,
) -> None:
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--otlp-endpoint", otlp_receiver.endpoint))
    envoy = envoy_factory(authz.port, answers.server_address[1], otel_port=otlp_receiver.port)
    status, _, body = post(envoy, "/v1/chat/completions", PROMPT, {"x-answer": "credential"})
    assert status == 502
    decision_id = json.loads(body)["decision_id"]
    check = otlp_receiver.wait_for(lambda s: s.name == "authz.check")[0]
    response = otlp_receiver.wait_for(lambda s: s.name == "authz.response")[0]
    assert response.trace_id == check.trace_id
    assert response.attributes["authz.decision_id"] == decision_id
    assert response.attributes["authz.decision"] == "deny"
    assert response.attributes["authz.rule"] == "credential-in-answer"
    client = otlp_receiver.wait_for(
        lambda s: s.name == EXT_PROC_SPAN and s.trace_id == check.trace_id, timeout=20
    )[0]
    assert response.parent_span_id == client.span_id  # under Envoy's ext_proc call
