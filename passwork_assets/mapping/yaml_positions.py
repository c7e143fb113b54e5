"""YAML parsing that remembers the line of every key, so each problem can be reported where it is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class YamlProblem(Exception):
    """The text is not usable YAML; `line` is 1-based (None when unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        super().__init__(message)


@dataclass
class PositionedYaml:
    """Plain Python data (dicts, lists, scalars) plus the line of each key path: ("fields", "Name") -> 12."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one (a missing key reports its parent's line)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


_constructor = yaml.constructor.SafeConstructor()


def parse_yaml(text: str) -> PositionedYaml:
    """Parse one YAML document; duplicate keys are an error (PyYAML would silently keep the last)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise YamlProblem(f"invalid YAML: {problem}{context}", line) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", None) from None
    result = PositionedYaml(data=None)
    if node is None:
        return result
    result.lines[()] = node.start_mark.line + 1
    result.data = _build(node, (), result.lines)
    return result


def _build(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem("a key must be a plain value, not a list or mapping", key_node.start_mark.line + 1)
            key = _constructor.construct_object(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlProblem("YAML merge keys (<<) are not supported in mapping files", key_node.start_mark.line + 1)
            if key in out:
                raise YamlProblem(
                    f"duplicate key {key!r} (first at line {lines[path + (key,)]})", key_node.start_mark.line + 1
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_build(item, path + (i,), lines))
        return items
    return _constructor.construct_object(node)
