"""Read a policy file into the model, collecting every shape error with its position."""

from __future__ import annotations

import re
from typing import Any

from authz.config.identity import ApiKey
from authz.config.model import ALLOW, DENY, CacheConfig, Config, Limits, Policy, Rule
from authz.config.reader import Reader, did_you_mean
from authz.config.source import Located, load_yaml, plain
from authz.decision import DENY_BODY_FIELDS
from authz.detectors.config import read_detectors
from authz.errors import ConfigError
from authz.identity.apikey import load_api_keys
from authz.identity.config import read_identity, scopes
from authz.jsonrpc import DENY_AS, HTTP, valid_code
from authz.policy.engine import ENGINE_NAMES
from authz.policy.response_rules import read_response_rules

TOP_KEYS = {
    "engine",
    "policies",
    "limits",
    "identity",
    "data",
    "cache",
    "tests",
    "deny_body",
    "detectors",
}
POLICY_KEYS = {
    "name",
    "match",
    "rules",
    "default",
    "default_status",
    "require_identity",
    "mode",
    "dry_run_header",
    "response_rules",
    "on_unreadable",
    "deny_as",
}
RULE_KEYS = {
    "name",
    "when",
    "effect",
    "status",
    "message",
    "headers",
    "remove_headers",
    "response_headers",
    "metadata",
    "deny_as",
    "jsonrpc_code",
    "insufficient_scope",
}
LIMIT_KEYS = {
    "max_body_bytes",
    "max_json_depth",
    "max_scan_chars",
    "envoy_max_request_bytes",
    "stream_hold_chars",
}
# The decision record and the dry-run keys share the namespace with a rule's metadata.
RESERVED_METADATA = {
    "decision_id",
    "decision",
    "status",
    "policy",
    "rule",
    "reason",
    "message",
    "dry_run",
    "would_decision",
    "would_status",
    "would_rule",
    "would_reason",
}
# RFC 9110 token characters; pseudo-headers (":path") are Envoy's, never a policy's.
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class _Reader(Reader):
    """The policy-specific parts of reading."""

    def expressions(self, value: Any, where: Any, what: str, header_names: bool) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.issue(where, f"{what} must be a mapping of name to CEL expression")
            return {}
        out: dict[str, Located] = {}
        for name, expr in value.items():
            if header_names and not HEADER_NAME.match(str(name)):
                self.issue(name, f"invalid header name '{name}' in {what}")
                continue
            if not header_names and name in RESERVED_METADATA:
                self.issue(name, f"metadata key '{name}' is reserved for the decision")
                continue
            checked = self.text(expr, name, f"{what}.{name}")
            if checked is not None:
                out[str(name).lower() if header_names else str(name)] = checked
        return out

    def header_name(self, data: dict[str, Any], key: str, where: Any) -> str:
        """An optional header name under `key`."""
        value = data.get(key, "")
        if value and (not isinstance(value, str) or not HEADER_NAME.match(value)):
            self.issue(self.key(data, key, where), f"{key} must be a header name")
            return ""
        return str(value).lower()

    def rule(self, raw: Any, where: Any) -> Rule | None:
        data = self.mapping(raw, where, "rule", RULE_KEYS)
        name = self.text(data.get("name"), where, "rule name")
        when = self.text(data.get("when"), name or where, "rule 'when'")
        effect = self.choice(data.get("effect"), name or where, "rule effect", (ALLOW, DENY))
        status = self.status(data.get("status"), self.key(data, "status", name or where), "status")
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            self.issue(name or where, "message must be a string")
        removes = data.get("remove_headers") or []
        if not isinstance(removes, list) or not all(
            isinstance(h, str) and HEADER_NAME.match(h) for h in removes
        ):
            self.issue(name or where, "remove_headers must be a list of header names")
            removes = []
        rule = Rule(
            name=name or Located("?"),
            when=when or Located("false"),
            effect=effect or DENY,
            status=status,
            message=str(message) if isinstance(message, str) else None,
            headers=self.expressions(data.get("headers"), name or where, "headers", True),
            remove_headers=tuple(h.lower() for h in removes),
            response_headers=self.expressions(
                data.get("response_headers"), name or where, "response_headers", True
            ),
            metadata=self.expressions(data.get("metadata"), name or where, "metadata", False),
            **self.jsonrpc(data, name or where, effect),
            insufficient_scope=self.insufficient_scope(data, name or where, effect, status),
        )
        return rule if name and when and effect else None

    def insufficient_scope(
        self, data: dict[str, Any], where: Any, effect: str | None, status: int | None
    ) -> tuple[str, ...]:
        """A deny rule's `insufficient_scope: [SCOPE, ...]`: its deny is a 403 with the
        RFC 6750 3.1 challenge naming them, sent as HTTP whatever the policy's deny_as."""
        if "insufficient_scope" not in data:
            return ()
        at = self.key(data, "insufficient_scope", where)
        wanted = scopes(self, data, "insufficient_scope", where)
        if not wanted and isinstance(data["insufficient_scope"], list):
            self.issue(at, "insufficient_scope must name at least one scope")
        if effect == ALLOW:
            self.issue(at, "insufficient_scope applies to a deny, not an allow")
        if status not in (None, 403):
            self.issue(at, "a rule with insufficient_scope answers 403 (drop its status)")
        if data.get("deny_as", "http") != "http":
            self.issue(at, "a rule with insufficient_scope is answered over HTTP (deny_as: http)")
        return wanted

    def jsonrpc(self, data: dict[str, Any], where: Any, effect: str | None) -> dict[str, Any]:
        """A rule's `deny_as` and `jsonrpc_code` (how its deny is sent on an MCP route)."""
        out: dict[str, Any] = {}
        if "deny_as" in data:
            out["deny_as"] = self.choice(
                data["deny_as"], self.key(data, "deny_as", where), "deny_as", DENY_AS
            )
        if "jsonrpc_code" in data:
            code = data["jsonrpc_code"]
            if valid_code(code):
                out["jsonrpc_code"] = code
            else:
                self.issue(
                    self.key(data, "jsonrpc_code", where),
                    "jsonrpc_code must be an integer outside JSON-RPC's reserved -32768..-32000"
                    " (or a standard code, or a server code -32099..-32000)",
                )
        if out and effect == ALLOW:
            key = next(k for k in ("deny_as", "jsonrpc_code") if k in data)
            self.issue(self.key(data, key, where), f"{key} applies to a deny, not an allow")
        return out

    def policy(self, raw: Any, where: Any) -> Policy | None:
        data = self.mapping(raw, where, "policy", POLICY_KEYS)
        name = self.text(data.get("name"), where, "policy name")
        match = data.get("match")
        if match is not None:
            match = self.text(match, name or where, "policy 'match'")
        default = self.choice(
            data.get("default", DENY), name or where, "policy default", (ALLOW, DENY)
        )
        default_status = self.status(
            data.get("default_status"),
            self.key(data, "default_status", name or where),
            "default_status",
        )
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            self.issue(name or where, "rules must be a list")
            raw_rules = []
        rules = [self.rule(r, name or where) for r in raw_rules]
        self.unique([r.name for r in rules if r is not None], "rule name")
        if name is None:
            return None
        return Policy(
            name=name,
            rules=tuple(r for r in rules if r is not None),
            match=match,
            default=default or DENY,
            default_status=default_status or 403,
            require_identity=self.flag(data, "require_identity", name or where, False),
            dry_run=self.choice(
                data.get("mode", "enforce"),
                self.key(data, "mode", name or where),
                "policy mode",
                ("enforce", "dry-run"),
            )
            == "dry-run",
            dry_run_header=self.header_name(data, "dry_run_header", name or where),
            response_rules=read_response_rules(self, data.get("response_rules"), name or where),
            on_unreadable=self.choice(
                data.get("on_unreadable", DENY),
                self.key(data, "on_unreadable", name or where),
                "on_unreadable",
                (DENY, ALLOW),
            )
            or DENY,
            deny_as=self.choice(
                data.get("deny_as", HTTP),
                self.key(data, "deny_as", name or where),
                "policy deny_as",
                DENY_AS,
            )
            or HTTP,
        )

    def deny_body(self, raw: Any, where: Any) -> tuple[str, ...]:
        """`deny_body: {include: [...]}`: what a denied client may learn beyond the error."""
        if raw is None:
            return ()
        data = self.mapping(raw, where, "deny_body", {"include"})
        fields = self.strings(data, "include", where)
        for name in fields:
            if name not in DENY_BODY_FIELDS:
                hint = did_you_mean(name, DENY_BODY_FIELDS)
                self.issue(
                    self.key(data, "include", where),
                    f"deny_body.include: unknown field '{name}'{hint}"
                    f" (known: {', '.join(DENY_BODY_FIELDS)})",
                )
        return tuple(f for f in fields if f in DENY_BODY_FIELDS)

    def limits(self, raw: Any, where: Any) -> Limits:
        if raw is None:
            return Limits()
        data = self.mapping(raw, where, "limits", LIMIT_KEYS)
        values = {}
        for key in LIMIT_KEYS & data.keys():
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                self.issue(key, f"limits.{key} must be a positive integer")
            else:
                values[key] = value
        return Limits(**values)


def load_config(path: str) -> Config:
    """Load and shape-check a policy file; raises ConfigError listing every issue."""
    data, source = load_yaml(path)
    reader = _Reader(source)
    top = reader.mapping(data, None, "the config", TOP_KEYS)
    engine = reader.choice(top.get("engine", "cel-cpp"), None, "engine", ENGINE_NAMES)
    raw_policies = top.get("policies")
    if not isinstance(raw_policies, list) or not raw_policies:
        reader.issue(None, "policies must be a non-empty list")
        raw_policies = []
    policies = [reader.policy(p, None) for p in raw_policies]
    reader.unique([p.name for p in policies if p is not None], "policy name")
    limits = reader.limits(top.get("limits"), None)
    identity = read_identity(reader, top.get("identity"), reader.key(top, "identity", None))
    api_keys: list[ApiKey] = []
    if identity.api_keys is not None:
        api_keys = load_api_keys(identity.api_keys.file, reader)
    cache = None
    if "cache" in top:
        where = reader.key(top, "cache", None)
        section = reader.mapping(top["cache"] or {}, where, "cache", {"max_entries", "ttl_seconds"})
        cache = CacheConfig(
            max_entries=max(1, int(reader.number(section, "max_entries", where, 10_000))),
            ttl_seconds=reader.number(section, "ttl_seconds", where, 30.0) or 30.0,
        )
    deny_body = reader.deny_body(top.get("deny_body"), reader.key(top, "deny_body", None))
    detectors = read_detectors(reader, top.get("detectors"), reader.key(top, "detectors", None))
    data = top.get("data", {})
    if not isinstance(data, dict):
        reader.issue(reader.key(top, "data", None), "data must be a mapping")
        data = {}
    if reader.issues:
        raise ConfigError(reader.issues)
    return Config(
        source=source,
        engine=engine or "cel-cpp",
        policies=tuple(p for p in policies if p is not None),
        limits=limits,
        identity=identity,
        api_keys=tuple(api_keys),
        data=plain(data),
        cache=cache,
        deny_body=deny_body,
        detectors=detectors,
    )
