"""The response path: authz as Envoy's External Processor, judging what comes back.

(The `response` attribute is built in ../response_view.py; `response_rules:` are compiled
with the request's roots in ../policy/response_rules.py.)

judge.py     response attributes + compiled rules -> ResponseDecision (first match)
rewrite.py   redaction of a JSON body or text, every text leaf through redact()
events.py    text/event-stream bytes -> events (a partial event kept, bounded)
deltas.py    what each LLM dialect streams in an event: its answer text, the completion
sse.py       events judged as they pass, with a bounded hold-back; redaction across events
stream.py    one ext_proc stream (one HTTP request) as a state machine, no gRPC
replies.py   the ext_proc messages: headers read, replies and processing modes sent back
record.py    a response decision's span attributes and decision-log line
service.py   the ExternalProcessor/Process handlers (grpc.aio and thread pool)
"""
