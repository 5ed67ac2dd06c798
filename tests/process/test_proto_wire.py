"""Wire compatibility of our hand-written ext_authz protos with upstream Envoy's.

protos/ holds a hand-written subset of Envoy's ext_authz v3 protos. These tests check every
message and enum defined there (nested ones and map entries included) and the Authorization
service against the descriptors in the PyPI package ``xds-protos``, which is generated from
Envoy's own protos. Every field of ours must exist upstream with the same name, number, type,
label, message/enum type and oneof; every enum value of ours must have the same number
upstream. What upstream has and we left out is reported as a warning, not a failure.

Our generated modules and xds-protos register the same file names
(``envoy/service/auth/v3/external_auth.proto``, ...) in protobuf's default descriptor pool, so
they cannot be loaded in one process. Our side is described in the test process; upstream's is
described by running this very file as a script in a subprocess that has only the xds-protos
folder on ``PYTHONPATH`` (and ``-P``, so neither tests/ nor the project root is on sys.path and
nothing of ours can shadow upstream's ``envoy`` package). Both sides are described by the same
functions and exchanged as JSON.

xds-protos must never be installed into the project venv (it ships an old copy of
opentelemetry/proto that breaks the OTLP exporter), so it is installed with ``pip --target``
into a cache folder inside .venv and reused by later runs. If it cannot be installed, the
tests fail: a wire check that silently doesn't run is worse than none.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import json
import os
import pkgutil
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Literal, TypedDict

import pytest
from google.protobuf import descriptor, descriptor_pool

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROTOS_DIR = PROJECT_ROOT / "protos"
XDS_PROTOS_DIR = PROJECT_ROOT / ".venv" / "xds-protos-target"
# A file that exists only once xds-protos has been installed completely.
XDS_PROTOS_PROBE = Path("envoy/service/auth/v3/external_auth_pb2.py")
PIP_TIMEOUT_SECONDS = 600
DUMP_TIMEOUT_SECONDS = 120

AUTHORIZATION = "envoy.service.auth.v3.Authorization"
CHECK_REQUEST = "envoy.service.auth.v3.CheckRequest"
CHECK_RESPONSE = "envoy.service.auth.v3.CheckResponse"

_TYPE_NAMES = {
    number: name
    for name, number in vars(descriptor.FieldDescriptor).items()
    if name.startswith("TYPE_")
}


class FieldInfo(TypedDict):
    """What matters on the wire about one field."""

    number: int
    type: str
    label: str
    type_name: str | None
    oneof: str | None
    packed: bool | None


FieldAttribute = Literal["number", "type", "label", "type_name", "oneof", "packed"]
FIELD_ATTRIBUTES: tuple[FieldAttribute, ...] = (
    "number",
    "type",
    "label",
    "type_name",
    "oneof",
    "packed",
)


class MessageInfo(TypedDict):
    """A message: its fields by name, plus its nested types (for reporting only)."""

    file: str
    map_entry: bool
    fields: dict[str, FieldInfo]
    nested: list[str]


class EnumInfo(TypedDict):
    """An enum: its value numbers by name."""

    file: str
    values: dict[str, int]


class MethodInfo(TypedDict):
    """An RPC method's request and response types and streaming flags."""

    input: str
    output: str
    client_streaming: bool
    server_streaming: bool


class ServiceInfo(TypedDict):
    """A service: its methods by name."""

    file: str
    methods: dict[str, MethodInfo]


class Dump(TypedDict):
    """Messages, enums and services by full name, and the .proto files they came from."""

    files: list[str]
    messages: dict[str, MessageInfo]
    enums: dict[str, EnumInfo]
    services: dict[str, ServiceInfo]


class UpstreamRequest(TypedDict):
    """What the upstream subprocess is asked to describe (full names, from our dump)."""

    files: list[str]
    messages: list[str]
    enums: list[str]
    services: list[str]


class UpstreamReply(TypedDict):
    """The upstream subprocess's answer."""

    version: str
    errors: list[str]
    dump: Dump


@dataclasses.dataclass
class Comparison:
    """Result of comparing our descriptors with upstream's.

    ``mismatches`` break wire compatibility and fail the test; ``extras`` are things upstream
    has in our types that we left out, which is allowed.
    """

    mismatches: list[str] = dataclasses.field(default_factory=list)
    extras: list[str] = dataclasses.field(default_factory=list)


class UpstreamExtrasWarning(UserWarning):
    """Upstream Envoy has fields, values or nested types that our subset leaves out."""


# --- Describing descriptors (runs both here and in the upstream subprocess) ------------------


def empty_dump() -> Dump:
    """Return a dump with nothing in it."""
    return {"files": [], "messages": {}, "enums": {}, "services": {}}


def _label(field: descriptor.FieldDescriptor) -> str:
    """Return "repeated", "required" or "optional" (``label`` is gone in protobuf 7)."""
    if hasattr(field, "is_repeated"):
        if field.is_repeated:
            return "repeated"
        return "required" if field.is_required else "optional"
    labels = {field.LABEL_REPEATED: "repeated", field.LABEL_REQUIRED: "required"}
    return labels.get(field.label, "optional")


def describe_field(field: descriptor.FieldDescriptor) -> FieldInfo:
    """Describe one field."""
    referenced = field.message_type or field.enum_type
    return {
        "number": field.number,
        "type": _TYPE_NAMES.get(field.type, str(field.type)),
        "label": _label(field),
        "type_name": referenced.full_name if referenced is not None else None,
        "oneof": field.containing_oneof.name if field.containing_oneof is not None else None,
        "packed": getattr(field, "is_packed", None),
    }


def describe_message(message: descriptor.Descriptor) -> MessageInfo:
    """Describe one message (not its nested types; see :func:`dump_files`)."""
    nested = [n.full_name for n in message.nested_types if not n.GetOptions().map_entry]
    nested += [e.full_name for e in message.enum_types]
    return {
        "file": message.file.name,
        "map_entry": message.GetOptions().map_entry,
        "fields": {f.name: describe_field(f) for f in message.fields},
        "nested": sorted(nested),
    }


def describe_enum(enum: descriptor.EnumDescriptor) -> EnumInfo:
    """Describe one enum."""
    return {"file": enum.file.name, "values": {v.name: v.number for v in enum.values}}


def describe_service(service: descriptor.ServiceDescriptor) -> ServiceInfo:
    """Describe one service."""
    methods: dict[str, MethodInfo] = {
        m.name: {
            "input": m.input_type.full_name,
            "output": m.output_type.full_name,
            "client_streaming": bool(getattr(m, "client_streaming", False)),
            "server_streaming": bool(getattr(m, "server_streaming", False)),
        }
        for m in service.methods
    }
    return {"file": service.file.name, "methods": methods}


def _add_message(dump: Dump, message: descriptor.Descriptor) -> None:
    """Add a message, and everything nested in it, to ``dump``."""
    dump["messages"][message.full_name] = describe_message(message)
    for nested in message.nested_types:
        _add_message(dump, nested)
    for enum in message.enum_types:
        dump["enums"][enum.full_name] = describe_enum(enum)


def dump_files(files: Iterable[descriptor.FileDescriptor]) -> Dump:
    """Describe every message, enum and service defined in ``files``, nested ones included."""
    dump = empty_dump()
    for file in files:
        dump["files"].append(file.name)
        for message in file.message_types_by_name.values():
            _add_message(dump, message)
        for enum in file.enum_types_by_name.values():
            dump["enums"][enum.full_name] = describe_enum(enum)
        for service in file.services_by_name.values():
            dump["services"][service.full_name] = describe_service(service)
    dump["files"].sort()
    return dump


def dump_upstream(request: UpstreamRequest) -> UpstreamReply:
    """Describe the requested types as the xds-protos modules on sys.path define them.

    Imports the upstream module for each requested file, then looks every requested name up
    in the default pool (so a type upstream moved to another imported file is still found).
    Names upstream lacks are left out of the dump; the comparison reports them.
    """
    errors: list[str] = []
    files: list[descriptor.FileDescriptor] = []
    for file_name in request["files"]:
        module_name = file_name.removesuffix(".proto").replace("/", ".") + "_pb2"
        try:
            files.append(importlib.import_module(module_name).DESCRIPTOR)
        except Exception as exc:
            errors.append(f"cannot import upstream {module_name}: {exc!r}")
    envoy = sys.modules.get("envoy")
    roots = [Path(p).resolve() for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if envoy is not None and not all(
        any(Path(p).resolve().is_relative_to(root) for root in roots) for p in envoy.__path__
    ):
        errors.append(f"'envoy' came from {list(envoy.__path__)}, not from xds-protos")
    if "authz" in sys.modules:
        errors.append("the project's authz package was imported next to xds-protos")

    pool = descriptor_pool.Default()
    dump = empty_dump()
    dump["files"] = sorted(f.name for f in files)
    for name in request["messages"]:
        with contextlib.suppress(KeyError):
            dump["messages"][name] = describe_message(pool.FindMessageTypeByName(name))
    for name in request["enums"]:
        with contextlib.suppress(KeyError):
            dump["enums"][name] = describe_enum(pool.FindEnumTypeByName(name))
    for name in request["services"]:
        with contextlib.suppress(KeyError):
            dump["services"][name] = describe_service(pool.FindServiceByName(name))
    try:
        version = metadata.version("xds-protos")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"version": version, "errors": errors, "dump": dump}


def _upstream_main() -> None:
    """Subprocess entry point: read an UpstreamRequest on stdin, write the reply on stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed while importing must not corrupt the JSON
    request: UpstreamRequest = json.load(sys.stdin)
    json.dump(dump_upstream(request), out)
    out.flush()


# --- Comparing ----------------------------------------------------------------------------


def compare(ours: Dump, upstream: Dump) -> Comparison:
    """Compare our dump with upstream's: every type, field and value of ours must match."""
    result = Comparison()
    for name, message in sorted(ours["messages"].items()):
        theirs = upstream["messages"].get(name)
        if theirs is None:
            result.mismatches.append(f"message {name}: not defined upstream")
            continue
        if message["map_entry"] != theirs["map_entry"]:
            result.mismatches.append(
                f"message {name}: map entry is {message['map_entry']} here "
                f"but {theirs['map_entry']} upstream"
            )
        names_by_number = {f["number"]: n for n, f in theirs["fields"].items()}
        for field_name, field in message["fields"].items():
            their_field = theirs["fields"].get(field_name)
            if their_field is None:
                other = names_by_number.get(field["number"])
                hint = f" (number {field['number']} is {other!r} upstream)" if other else ""
                result.mismatches.append(f"field {name}.{field_name}: not upstream{hint}")
                continue
            for attribute in FIELD_ATTRIBUTES:
                if field[attribute] != their_field[attribute]:
                    result.mismatches.append(
                        f"field {name}.{field_name}: {attribute} is {field[attribute]!r} "
                        f"here but {their_field[attribute]!r} upstream"
                    )
        for field_name in sorted(theirs["fields"].keys() - message["fields"].keys()):
            their_field = theirs["fields"][field_name]
            kind = their_field["type_name"] or their_field["type"].removeprefix("TYPE_").lower()
            result.extras.append(
                f"field {name}.{field_name} = {their_field['number']} "
                f"({their_field['label']} {kind})"
            )
        for nested in sorted(set(theirs["nested"]) - set(message["nested"])):
            result.extras.append(f"nested type {nested}")

    for name, enum in sorted(ours["enums"].items()):
        their_enum = upstream["enums"].get(name)
        if their_enum is None:
            result.mismatches.append(f"enum {name}: not defined upstream")
            continue
        for value_name, number in enum["values"].items():
            their_number = their_enum["values"].get(value_name)
            if their_number is None:
                result.mismatches.append(f"enum value {name}.{value_name}: not upstream")
            elif their_number != number:
                result.mismatches.append(
                    f"enum value {name}.{value_name}: {number} here but {their_number} upstream"
                )
        for value_name in sorted(their_enum["values"].keys() - enum["values"].keys()):
            result.extras.append(
                f"enum value {name}.{value_name} = {their_enum['values'][value_name]}"
            )

    for name, service in sorted(ours["services"].items()):
        their_service = upstream["services"].get(name)
        if their_service is None:
            result.mismatches.append(f"service {name}: not defined upstream")
            continue
        for method_name, method in service["methods"].items():
            their_method = their_service["methods"].get(method_name)
            if their_method is None:
                result.mismatches.append(f"method {name}.{method_name}: not upstream")
            elif their_method != method:
                result.mismatches.append(
                    f"method {name}.{method_name}: {method} here but {their_method} upstream"
                )
        for method_name in sorted(their_service["methods"].keys() - service["methods"].keys()):
            result.extras.append(f"method {name}.{method_name}")
    return result


# --- Getting both sides -------------------------------------------------------------------


def dump_ours() -> Dump:
    """Describe every file compiled into authz._proto (walks its ``*_pb2`` modules)."""
    try:
        package = importlib.import_module("authz._proto")
    except ImportError as exc:
        pytest.fail(f"authz._proto is missing ({exc}); run `make proto`", pytrace=False)
    files = [
        importlib.import_module(info.name).DESCRIPTOR
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
        if info.name.endswith("_pb2")
    ]
    return dump_files(files)


def install_xds_protos(target: Path) -> Path:
    """Install xds-protos into ``target`` with ``pip --target``, unless it is already there.

    pip installs into a private staging folder that is renamed into place once complete, so an
    interrupted install is never mistaken for a finished one.
    """
    if (target / XDS_PROTOS_PROBE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--target",
        str(staging),
        "xds-protos",
    ]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
        output, failed = proc.stdout + proc.stderr, proc.returncode != 0
    except subprocess.TimeoutExpired as exc:
        output, failed = f"timed out after {exc.timeout} s", True
    if failed or not (staging / XDS_PROTOS_PROBE).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(
            "could not install xds-protos, which holds upstream Envoy's protos to compare "
            "against; is the package index reachable?\n"
            f"$ {shlex.join(command)}\n{output}",
            pytrace=False,
        )
    if target.exists():  # an incomplete folder from an older run
        shutil.rmtree(target)
    try:
        staging.rename(target)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def request_for(ours: Dump) -> UpstreamRequest:
    """Ask upstream for every file and type we define."""
    return {
        "files": ours["files"],
        "messages": sorted(ours["messages"]),
        "enums": sorted(ours["enums"]),
        "services": sorted(ours["services"]),
    }


def dump_upstream_in_subprocess(xds_protos: Path, request: UpstreamRequest) -> UpstreamReply:
    """Run this file as a script with only ``xds_protos`` on the path; return its reply."""
    env = {**os.environ, "PYTHONPATH": str(xds_protos)}
    command = [sys.executable, "-P", str(Path(__file__).resolve())]
    try:
        proc = subprocess.run(
            command,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=xds_protos,
            env=env,
            timeout=DUMP_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"describing upstream protos timed out after {exc.timeout} s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"describing upstream protos failed (exit {proc.returncode}):\n"
            f"$ PYTHONPATH={xds_protos} {shlex.join(command)}\n{proc.stderr}",
            pytrace=False,
        )
    reply: UpstreamReply = json.loads(proc.stdout)
    return reply


# --- Tests --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ours() -> Dump:
    """Our descriptors, from the generated authz._proto modules."""
    return dump_ours()


@pytest.fixture(scope="session")
def upstream(ours: Dump) -> UpstreamReply:
    """Upstream's descriptors for the same names, from xds-protos in a subprocess."""
    reply = dump_upstream_in_subprocess(install_xds_protos(XDS_PROTOS_DIR), request_for(ours))
    assert not reply["errors"], "\n".join(reply["errors"])
    return reply


def test_every_proto_is_compiled_and_walked(ours: Dump) -> None:
    """authz._proto holds exactly the protos/ files, and nested and map types are dumped."""
    sources = sorted(p.relative_to(PROTOS_DIR).as_posix() for p in PROTOS_DIR.rglob("*.proto"))
    assert ours["files"] == sources, "authz/_proto is stale; run `make proto`"
    assert "envoy.service.auth.v3.AttributeContext.Peer.LabelsEntry" in ours["messages"]
    assert ours["messages"]["envoy.config.core.v3.Metadata.FilterMetadataEntry"]["map_entry"]
    assert "envoy.config.core.v3.HeaderValueOption.HeaderAppendAction" in ours["enums"]
    assert "envoy.type.v3.StatusCode" in ours["enums"]


def test_protos_are_wire_compatible_with_upstream(ours: Dump, upstream: UpstreamReply) -> None:
    """Every message, field, enum value and method of ours matches xds-protos exactly."""
    result = compare(ours, upstream["dump"])
    assert not result.mismatches, (
        f"our protos differ from upstream Envoy (xds-protos {upstream['version']}):\n  "
        + "\n  ".join(result.mismatches)
    )
    if result.extras:
        warnings.warn(
            UpstreamExtrasWarning(
                f"upstream (xds-protos {upstream['version']}) has {len(result.extras)} "
                "things our subset leaves out:\n  " + "\n  ".join(result.extras)
            ),
            stacklevel=1,
        )


def test_check_method_matches_upstream(ours: Dump, upstream: UpstreamReply) -> None:
    """Authorization.Check takes a CheckRequest and returns a CheckResponse, as upstream."""
    expected: MethodInfo = {
        "input": CHECK_REQUEST,
        "output": CHECK_RESPONSE,
        "client_streaming": False,
        "server_streaming": False,
    }
    assert ours["services"][AUTHORIZATION]["methods"]["Check"] == expected
    assert upstream["dump"]["services"][AUTHORIZATION]["methods"]["Check"] == expected


def test_compare_accepts_identical_dumps(ours: Dump) -> None:
    """Self-check: comparing our dump with itself finds nothing."""
    assert compare(ours, copy.deepcopy(ours)) == Comparison()


def test_compare_flags_wrong_field_number(ours: Dump) -> None:
    """Self-check: an upstream field with another number is a mismatch (drift is caught)."""
    theirs = copy.deepcopy(ours)
    theirs["messages"][CHECK_RESPONSE]["fields"]["denied_response"]["number"] = 7
    result = compare(ours, theirs)
    assert result.mismatches == [
        f"field {CHECK_RESPONSE}.denied_response: number is 2 here but 7 upstream"
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("messages", CHECK_RESPONSE, "fields", "ok_response", "type_name"),
            "envoy.service.auth.v3.DeniedHttpResponse",
            "field envoy.service.auth.v3.CheckResponse.ok_response: type_name is",
        ),
        (
            ("messages", CHECK_RESPONSE, "fields", "status", "oneof"),
            "http_response",
            "field envoy.service.auth.v3.CheckResponse.status: oneof is None",
        ),
        (
            ("messages", "envoy.service.auth.v3.OkHttpResponse", "fields", "headers", "label"),
            "optional",
            "field envoy.service.auth.v3.OkHttpResponse.headers: label is 'repeated'",
        ),
        (
            ("messages", "envoy.config.core.v3.HeaderValue", "fields", "raw_value", "type"),
            "TYPE_STRING",
            "field envoy.config.core.v3.HeaderValue.raw_value: type is 'TYPE_BYTES'",
        ),
        (
            ("enums", "envoy.type.v3.StatusCode", "values", "Forbidden"),
            401,
            "enum value envoy.type.v3.StatusCode.Forbidden: 403 here but 401 upstream",
        ),
        (
            ("services", AUTHORIZATION, "methods", "Check", "input"),
            CHECK_RESPONSE,
            "method envoy.service.auth.v3.Authorization.Check:",
        ),
    ],
)
def test_compare_flags_other_drift(
    ours: Dump, path: tuple[str, ...], value: object, expected: str
) -> None:
    """Self-check: other kinds of drift are each reported as exactly one mismatch."""
    theirs = copy.deepcopy(ours)
    node: dict[str, object] = theirs  # type: ignore[assignment]
    for key in path[:-1]:
        node = node[key]  # type: ignore[assignment]
    node[path[-1]] = value
    result = compare(ours, theirs)
    assert len(result.mismatches) == 1, result.mismatches
    assert result.mismatches[0].startswith(expected), result.mismatches


def test_compare_flags_missing_types_and_fields(ours: Dump) -> None:
    """Self-check: a message, enum or field that upstream lacks is a mismatch."""
    theirs = copy.deepcopy(ours)
    del theirs["messages"]["envoy.config.core.v3.QueryParameter"]
    del theirs["enums"]["envoy.config.core.v3.SocketAddress.Protocol"]
    del theirs["messages"]["envoy.config.core.v3.Pipe"]["fields"]["mode"]
    assert compare(ours, theirs).mismatches == [
        "field envoy.config.core.v3.Pipe.mode: not upstream",
        "message envoy.config.core.v3.QueryParameter: not defined upstream",
        "enum envoy.config.core.v3.SocketAddress.Protocol: not defined upstream",
    ]


def test_compare_reports_upstream_extras_without_failing(ours: Dump) -> None:
    """Self-check: fields and values only upstream has are extras, not mismatches."""
    theirs = copy.deepcopy(ours)
    theirs["messages"]["envoy.config.core.v3.Pipe"]["fields"]["owner"] = {
        "number": 9,
        "type": "TYPE_STRING",
        "label": "optional",
        "type_name": None,
        "oneof": None,
        "packed": False,
    }
    theirs["enums"]["envoy.type.v3.StatusCode"]["values"]["Teapot"] = 418
    result = compare(ours, theirs)
    assert result.mismatches == []
    assert result.extras == [
        "field envoy.config.core.v3.Pipe.owner = 9 (optional string)",
        "enum value envoy.type.v3.StatusCode.Teapot = 418",
    ]


if __name__ == "__main__":
    _upstream_main()
