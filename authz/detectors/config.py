"""Read the policy file's `detectors:` section, loading the model it names, with positions.

detectors:
  injection_model:
    onnx: models/prompt-guard-2-22m/model.onnx      # relative to this file's folder
    tokenizer: models/prompt-guard-2-22m/tokenizer.json
    max_tokens: 512        # a window; longer text is scored window by window
    timeout_seconds: 0.2   # a score not in by then denies (evaluation_error)
    threads: 1             # scorings at once
    max_queued: 8          # scorings waiting for a thread; one more denies
    label: 1               # the injection class's output index (or a list, summed)
"""

from __future__ import annotations

from typing import Any

from authz.config.model import DetectorsConfig
from authz.config.reader import Reader
from authz.detectors.classifier import (
    InjectionModel,
    ModelLoadError,
    ModelSettings,
)

SECTION_KEYS = {"injection_model"}
MODEL_KEYS = {
    "onnx",
    "tokenizer",
    "max_tokens",
    "timeout_seconds",
    "threads",
    "max_queued",
    "label",
}
WHAT = "detectors.injection_model"


def _count(
    reader: Reader, data: dict[str, Any], name: str, where: Any, least: int, default: int
) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "a positive integer" if least > 0 else "a non-negative integer"
        reader.issue(reader.key(data, name, where), f"{WHAT}.{name} must be {kind}")
        return default
    return value


def _labels(reader: Reader, data: dict[str, Any], where: Any) -> tuple[int, ...]:
    value = data.get("label", 1)
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        reader.issue(
            reader.key(data, "label", where),
            f"{WHAT}.label must be an output index (0, 1, ...) or a list of them",
        )
        return (1,)
    return tuple(sorted(set(values)))


def read_detectors(reader: Reader, raw: Any, where: Any) -> DetectorsConfig:
    """The detectors section; absent means no model (a policy calling injection_model() is
    then refused by the compiler)."""
    if raw is None:
        return DetectorsConfig()
    data = reader.mapping(raw, where, "detectors", SECTION_KEYS)
    if "injection_model" not in data:
        return DetectorsConfig()
    at = reader.key(data, "injection_model", where)
    before = len(reader.issues)
    section = reader.mapping(data["injection_model"], at, WHAT, MODEL_KEYS)
    onnx = reader.file(section.get("onnx"), at, f"{WHAT}.onnx")
    tokenizer = reader.file(section.get("tokenizer"), at, f"{WHAT}.tokenizer")
    timeout = reader.number(section, "timeout_seconds", at, 0.2)
    if "timeout_seconds" in section and timeout <= 0:
        reader.issue(
            reader.key(section, "timeout_seconds", at), f"{WHAT}.timeout_seconds must be above 0"
        )
    settings = ModelSettings(
        onnx=onnx or "",
        tokenizer=tokenizer or "",
        max_tokens=_count(reader, section, "max_tokens", at, 1, 512),
        timeout_seconds=timeout or 0.2,
        threads=_count(reader, section, "threads", at, 1, 1),
        max_queued=_count(reader, section, "max_queued", at, 0, 8),
        label=_labels(reader, section, at),
    )
    if len(reader.issues) > before:
        return DetectorsConfig()  # load nothing from a section already wrong
    try:
        return DetectorsConfig(InjectionModel(settings))
    except ModelLoadError as exc:
        position = {"onnx": section.get("onnx"), "tokenizer": section.get("tokenizer")}.get(
            exc.key
        ) or reader.key(section, exc.key, at)
        reader.issue(position, f"{WHAT}: {exc}")
        return DetectorsConfig()
