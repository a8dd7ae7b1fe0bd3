"""YAML to plain values, remembering the line of every key and catching what PyYAML forgives.

PyYAML's loaders lose line numbers and silently keep the last of two equal keys. This
module composes the node tree instead, and walks it: scalars become Python values (YAML
1.1 types, as ``yaml.safe_load`` gives), mappings become dicts with string keys, the line
of each key and list item is recorded under its key path, and duplicate keys, unsupported
tags, recursive aliases and unset environment variables become :class:`ConfigProblem`\\ s.

Environment interpolation applies to string values: ``${VAR}``, ``${VAR:-default}`` (the
default when VAR is unset or empty) and ``$$`` for a literal ``$``. Keys are never
interpolated. Merge keys (``<<: *anchor``) work as in YAML 1.1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from courier.broker.config_problems import ConfigProblem, Path, format_path

MAX_NODES = 100_000
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


@dataclass
class YamlDocument:
    """The walked document: plain ``data``, each key path's line, and what went wrong."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    # Paths whose value is already reported (bad scalar, unset variable): later checks skip them.
    reported: set[Path] = field(default_factory=set)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class _TooLarge(Exception):
    pass


def read_yaml(text: str, environ: Mapping[str, str]) -> YamlDocument:
    """Parse ``text`` (one YAML document); syntax errors come back as problems, not raised."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        return YamlDocument(None, problems=[_syntax_problem(exc)])
    except yaml.YAMLError as exc:  # ReaderError: bytes YAML cannot carry (control characters)
        message = " ".join(str(exc).split())
        return YamlDocument(None, problems=[ConfigProblem("", None, f"invalid YAML: {message}")])
    document = YamlDocument(None, lines={(): 1})
    if root is None:
        return document
    walker = _Walker(document, environ)
    try:
        document.data = walker.value(root, ())
    except _TooLarge:
        document.data = None
        document.problems.append(
            ConfigProblem("", None, f"document too large: more than {MAX_NODES} values (aliases?)")
        )
    return document


def _syntax_problem(exc: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "malformed document"
    if exc.context and exc.problem:
        context = exc.context
        if exc.context_mark is not None and exc.context_mark is not mark:
            context += f" started on line {exc.context_mark.line + 1}"
        message = f"{message} ({context})"
    message = " ".join(message.split())
    return ConfigProblem("", None if mark is None else mark.line + 1, f"invalid YAML: {message}")


class _Walker:
    def __init__(self, document: YamlDocument, environ: Mapping[str, str]) -> None:
        self.document = document
        self.environ = environ
        self.constructor = SafeConstructor()
        self.budget = MAX_NODES
        self.active: set[int] = set()

    def problem(self, path: Path, line: int | None, message: str) -> None:
        self.document.problems.append(ConfigProblem(format_path(path), line, message))
        self.document.reported.add(path)

    def value(self, node: Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge
        line = node.start_mark.line + 1
        if isinstance(node, ScalarNode):
            return self.scalar(node, path, line)
        if id(node) in self.active:
            self.problem(path, line, "recursive YAML alias")
            return None
        if node.tag not in (_MAP_TAG, _SEQ_TAG):
            self.problem(path, line, f"unsupported YAML tag {node.tag}")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                for index, child in enumerate(node.value):
                    self.document.lines[(*path, index)] = child.start_mark.line + 1
                    items.append(self.value(child, (*path, index)))
                return items
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: Path, line: int) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problem(path, line, " ".join(f"invalid value: {exc.problem}".split()))
            return None
        if isinstance(value, str) and "$" in value:
            return self.interpolate(value, path, line)
        return value

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: list[tuple[Node, Node]] = []
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
            else:
                explicit.append((key_node, value_node))
        # Merged keys first (earlier sources win), so explicit keys override them and their lines.
        for source in reversed(self.merge_sources(merges, path)):
            result.update(self.value(source, path) or {})
        first_line: dict[str, int] = {}
        for key_node, value_node in explicit:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.problem(path, line, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            if key in first_line:
                what = "consumer" if path == ("consumers",) else "key"
                message = (
                    f'duplicate {what} "{key}" (first defined on line {first_line[key]}); '
                    "YAML would silently keep only the last one"
                )
                # Not marked as reported: the first definition is still checked.
                self.document.problems.append(
                    ConfigProblem(format_path((*path, key)), line, message)
                )
                continue
            first_line[key] = line
            self.document.lines[(*path, key)] = line
            result[key] = self.value(value_node, (*path, key))
        return result

    def merge_sources(self, merges: list[Node], path: Path) -> list[Node]:
        sources: list[Node] = []
        for merge in merges:
            candidates = merge.value if isinstance(merge, SequenceNode) else [merge]
            for candidate in candidates:
                if isinstance(candidate, MappingNode):
                    sources.append(candidate)
                else:
                    line = candidate.start_mark.line + 1
                    self.problem(path, line, "a merge key (<<) needs a mapping or a list of them")
        return sources

    def interpolate(self, text: str, path: Path, line: int) -> str | None:
        out: list[str] = []
        index = 0
        while index < len(text):
            char = text[index]
            following = text[index + 1 : index + 2]
            if char != "$" or following not in ("$", "{"):
                out.append(char)
                index += 1
                continue
            if following == "$":
                out.append("$")
                index += 2
                continue
            end = text.find("}", index + 2)
            if end < 0:
                self.problem(path, line, f"unterminated ${{...}} in {json.dumps(text)}")
                return None
            reference = text[index + 2 : end]
            match = _VAR.fullmatch(reference)
            if match is None:
                self.problem(
                    path,
                    line,
                    f"malformed reference ${{{reference}}}: "
                    "expected ${NAME} or ${NAME:-default}",
                )
                return None
            name, default = match.groups()
            value = self.environ.get(name)
            if default is not None and not value:
                value = default
            if value is None:
                self.problem(
                    path,
                    line,
                    f"environment variable {name} is not set (give a default: ${{{name}:-...}})",
                )
                return None
            out.append(value)
            index = end + 1
        return "".join(out)
