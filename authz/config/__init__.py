"""The config layer: the policy file as typed values with source positions.

    source.py    YAML with line and column on every value (Located, SourceFile)
    reader.py    shape checks that collect FILE:LINE:COL issues (Reader)
    model.py     the policy file's typed values (Config, Policy, Rule, Limits, ...)
    identity.py  the identity section's typed values and API key records

It imports nothing above it: requests, views, identity, policy and the service read it.
"""
