"""YAML that remembers where each string came from, so errors can say FILE:LINE:COL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from authz.errors import ConfigError, ConfigIssue

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Located(str):
    """A string scalar with its position in the source file (1-based line and column)."""

    line: int
    col: int
    style: str | None
    origin: SourceFile

    def expression_position(self, line: int, col: int) -> tuple[int, int]:
        """Map a 1-based position inside this string to a position in the file."""
        if self.style in ("|", ">"):
            # Block scalars start on the line after the indicator.
            first = self.origin.line_text(self.line + 1)
            indent = len(first) - len(first.lstrip(" "))
            file_line = self.line + line
            return file_line, indent + col
        shift = 1 if self.style in ("'", '"') else 0
        if line == 1:
            return self.line, self.col + shift + col - 1
        return self.line + line - 1, col


@dataclass(frozen=True)
class SourceFile:
    """A config file's name and text."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, or '' past the end."""
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def issue(self, at: Any, message: str, snippet: str = "") -> ConfigIssue:
        """An issue positioned at a Located value (or at the top of the file)."""
        if isinstance(at, Located):
            return ConfigIssue(self.name, at.line, at.col, message, snippet)
        return ConfigIssue(self.name, 1, 1, message, snippet)


def _loader_for(origin: SourceFile) -> type:
    class Loader(_BaseLoader):  # type: ignore[misc, valid-type]
        pass

    def construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Located:
        value = Located(loader.construct_scalar(node))
        value.line = node.start_mark.line + 1
        value.col = node.start_mark.column + 1
        value.style = node.style
        value.origin = origin
        return value

    Loader.add_constructor("tag:yaml.org,2002:str", construct_str)
    Loader.construct_mapping = _unique_keys(Loader.construct_mapping)  # type: ignore[method-assign]
    return Loader


def _unique_keys(construct: Any) -> Any:
    """A mapping that names a key twice is refused at the second one: YAML would keep the
    last silently, so a repeated `when:` or `effect:` could turn a deny into an allow."""

    def construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key_node.value}' (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return construct(loader, node, deep)

    return construct_mapping


def load_yaml(path: str) -> tuple[Any, SourceFile]:
    """Parse a YAML file; a syntax error becomes a ConfigError with its position."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(path, 1, 1, f"cannot read config: {exc}")]) from None
    origin = SourceFile(path, text)
    try:
        data = yaml.load(text, Loader=_loader_for(origin))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"invalid YAML: {exc.problem or exc.context}"
        raise ConfigError([ConfigIssue(path, line, col, message)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(path, 1, 1, f"invalid YAML: {exc}")]) from None
    return data, origin


def plain(value: Any) -> Any:
    """YAML values without source positions (Located strings become str)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, str) else value
