"""The response path: authz as Envoy's External Processor, judging what comes back.

view.py      the `response` attribute (status, headers, body, llm, mcp) and its type
rules.py     `response_rules:` read from the file and compiled with the request's roots
judge.py     response attributes + compiled rules -> ResponseDecision (first match)
rewrite.py   redaction of a JSON body or text, every text leaf through redact()
sse.py       text/event-stream: events judged as they pass, with a bounded hold-back
stream.py    one ext_proc stream (one HTTP request) as a state machine, no gRPC
service.py   the ExternalProcessor/Process handlers (grpc.aio and thread pool)
"""
