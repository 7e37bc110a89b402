"""Reading a retriever YAML file within bounds: size, UTF-8, duplicate keys, depth, alias expansion and number length.

A retriever file is a few hundred bytes. These bounds refuse, before anything is built, a file
whose loading or use would not end: a YAML alias bomb (513 bytes that expand to billions of
nodes), nesting deeper than any config needs (the composer recurses), or numbers so long that
converting them is refused by Python itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from eval_pipelines.core.paths import DataPath, shown, shown_field
from eval_pipelines.core.retrieval.config import RetrieverConfigError
from eval_pipelines.core.storage import read_whole

MAX_FILE_BYTES = 2_000_000
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 100_000
MAX_NUMBER_CHARACTERS = 100
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML would keep the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {shown(key)} given twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: DataPath) -> Any:
    """Parse a YAML file within the bounds above; any problem becomes a RetrieverConfigError
    naming the field (or the line, for a syntax error)."""
    try:
        raw = read_whole(path, limit=MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RetrieverConfigError(path, "file", f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RetrieverConfigError(
            path,
            "file",
            f"larger than {MAX_FILE_BYTES:,} bytes (a retriever file is a few hundred)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RetrieverConfigError(path, "file", f"not UTF-8 text ({exc.reason})") from None
    try:
        check_yaml_shape(text, path)
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except RetrieverConfigError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RetrieverConfigError(path, "yaml", f"invalid YAML at {where}: {problem}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # e.g. a date that does not exist (2026-02-30): the constructor raises, with no position
        raise RetrieverConfigError(path, "yaml", f"a value cannot be read: {exc}") from None


@dataclass
class _Open:
    """A mapping or sequence being read: where it is, and what it holds so far (aliases expanded)."""

    field: str
    anchor: str | None
    is_mapping: bool
    nodes: int = 1
    height: int = 1
    index: int = 0
    key: str | None = None


def _child_field(parent: _Open | None) -> tuple[str, bool]:
    """The dotted field of the next node under parent, and whether that node is a mapping key."""
    if parent is None:
        return "", False
    if parent.is_mapping:
        if parent.key is None:
            return parent.field, True
        return (f"{parent.field}.{parent.key}" if parent.field else parent.key), False
    return f"{parent.field}[{parent.index}]", False


def _advance(parent: _Open | None, key_text: str | None) -> None:
    """Move parent past one child node (a key's text names the value that follows it)."""
    if parent is None:
        return
    if not parent.is_mapping:
        parent.index += 1
    elif parent.key is None:
        parent.key = shown_field(key_text) if key_text is not None else "?"
    else:
        parent.key = None


def _scalar_problem(event: ScalarEvent) -> str | None:
    surrogate = _SURROGATE.search(event.value)
    if surrogate:
        return (
            f"contains {shown(surrogate.group())}, a lone surrogate that is not a Unicode character"
            " (write the character itself, or \\U0001F600 for one outside the BMP)"
        )
    if len(event.value) > MAX_NUMBER_CHARACTERS:
        tag = event.tag
        if tag in (None, "!"):
            tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag in _NUMBER_TAGS:
            return (
                f"a number written with {len(event.value):,} characters"
                f" (at most {MAX_NUMBER_CHARACTERS})"
            )
    return None


def check_yaml_shape(text: str, file: DataPath | str) -> None:
    """Refuse a document that is too deep, too big once its aliases are expanded, or holds
    text that is not Unicode or a number too long to convert; reads events only, builds nothing.

    PyYAML shares an alias's node instead of copying it, so loading a bomb is quick: the hang
    comes later, in whatever walks, hashes or prints the expanded structure. Counting here, with
    each alias weighing what its anchor holds, stops at the bound however the file is nested.
    """
    check = _ShapeCheck(file)
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, CollectionEndEvent):
            check.end_collection()
        elif isinstance(event, NodeEvent):
            check.node(event)


class _ShapeCheck:
    """The collections open at the current event, the weight of each anchor, and the running
    count of values as if every alias were expanded."""

    def __init__(self, file: DataPath | str) -> None:
        self.file = file
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[int, int]] = {}
        self.total = 0

    def refuse(self, problem: str, where: str) -> RetrieverConfigError:
        return RetrieverConfigError(self.file, where or "(top level)", problem)

    def end_collection(self) -> None:
        done = self.stack.pop()
        if done.anchor is not None:
            self.anchors[done.anchor] = (done.nodes, done.height)
        if self.stack:
            self.stack[-1].nodes += done.nodes
            self.stack[-1].height = max(self.stack[-1].height, done.height + 1)

    def node(self, event: NodeEvent) -> None:
        parent = self.stack[-1] if self.stack else None
        field, is_key = _child_field(parent)
        nodes, height = self._weight(event, field, is_key)
        if len(self.stack) + height > MAX_YAML_DEPTH:
            raise self.refuse(f"nested deeper than {MAX_YAML_DEPTH} levels", field)
        self._count(nodes, field)
        if parent is not None:
            parent.nodes += nodes
            parent.height = max(parent.height, height + 1)
        _advance(parent, event.value if isinstance(event, ScalarEvent) else None)
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            if len(self.stack) + 1 > MAX_YAML_DEPTH:
                raise self.refuse(f"nested deeper than {MAX_YAML_DEPTH} levels", field)
            self.total += 1
            self.stack.append(_Open(field, event.anchor, isinstance(event, MappingStartEvent)))

    def _weight(self, event: NodeEvent, field: str, is_key: bool) -> tuple[int, int]:
        """(values, height) the node adds: an alias weighs what its anchor holds."""
        if isinstance(event, AliasEvent):
            if event.anchor in {f.anchor for f in self.stack}:
                raise self.refuse(f"alias *{event.anchor} refers to a node that contains it", field)
            return self.anchors.get(event.anchor, (1, 0))
        if isinstance(event, ScalarEvent):
            problem = _scalar_problem(event)
            if problem is not None:
                raise self.refuse(problem, f"{field or '(top level)'} (a key)" if is_key else field)
            if event.anchor is not None:
                self.anchors[event.anchor] = (1, 0)
            return 1, 0
        return 0, 0

    def _count(self, nodes: int, field: str) -> None:
        self.total += nodes
        if self.total > MAX_YAML_NODES:
            raise self.refuse(
                f"the file holds more than {MAX_YAML_NODES:,} values once its aliases are expanded",
                field,
            )
