"""Helpers for the tests and bench/, one concern a module.

paths      where the shipped files are (REPO_ROOT, ENVOY_CONFIG, EXAMPLE_POLICY, DEMO_KEYS)
ports      free_port, next_base_id
proc       Proc (a subprocess in its own group, stopped SIGTERM then SIGKILL), children
health     the one readiness poller (wait_until) and its probes: HTTP, gRPC health, TCP
envoy      the shipped Envoy config rendered with test ports; start_envoy, launch_envoy
authz      start_authz: `python -m authz serve`, ready on gRPC health
upstream   start_upstream: the demo echo upstream, counting requests
client     http() as a client sends it; scrape() of /metrics
tokens     keys, JWKS and tokens; demo_token() signed with the shipped demo key
otlp, local_http (jwks_server, introspection_server), sdk_upstream, ext_proc, corpus, fuzzing,
tiny_classifier: the in-process servers and data the tests need
"""
