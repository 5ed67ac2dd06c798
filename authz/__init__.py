"""authz: an Envoy ext_authz v3 policy decision point driven by CEL policies in YAML."""

__version__ = "0.1.0"
