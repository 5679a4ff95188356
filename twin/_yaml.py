"""The one YAML reader of citytwin: safe, strict and bounded.

Every YAML file citytwin reads (scenarios, experiments, their base scenarios, the resolved scenario
of a run folder, the map catalogue) goes through :func:`load_yaml` or :func:`load_yaml_text`. On top
of PyYAML's ``SafeLoader`` (no Python objects, no tags beyond the core schema) it

* keeps clock times as strings: YAML 1.1 reads an unquoted ``7:00`` as the base-60 integer 420 and
  ``1:30:00.5`` as a base-60 float; here they stay ``"7:00"`` and ``"1:30:00.5"``, so the scenario's
  time fields parse them as clock times whether quoted or not;
* refuses duplicate keys (YAML leaves them undefined; PyYAML keeps the last silently), naming the key
  and both lines;
* bounds what a small file can make: nesting depth (:data:`MAX_DEPTH`), the size of the document with
  its aliases expanded (:data:`MAX_EXPANDED_NODES`, the "billion laughs" attack) and the file size
  (:data:`MAX_FILE_BYTES`); each is refused in well under a second;
* reads only regular files: a directory, FIFO, device or socket is refused before it is opened (a FIFO
  would block forever, ``/dev/zero`` never ends), and every OS error becomes one line.

Errors are :class:`~twin._errors.ScenarioError` (for scenario-like files: ``path: message``) with
line and column where the parser gives them.

Why by hand: PyYAML has no option for any of these (ruamel.yaml's YAML 1.2 mode drops base-60 but
reads ``on``/``off``/``yes`` as strings, which our shipped files and users' files rely on as booleans,
and it has no expansion bound); the subclass below changes only the resolver and the composer.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from twin._errors import ScenarioError

__all__ = ["load_yaml", "load_yaml_text", "read_text_file", "MAX_DEPTH", "MAX_EXPANDED_NODES", "MAX_FILE_BYTES",
           "StrictLoader"]

#: Deepest nesting of mappings and lists accepted (a scenario needs about 5).
MAX_DEPTH = 64
#: Most nodes of a document with every alias expanded (a scenario has a few hundred).
MAX_EXPANDED_NODES = 100_000
#: Largest YAML file accepted, bytes.
MAX_FILE_BYTES = 16 * 1024 * 1024


class StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` without YAML 1.1's base-60 numbers, with duplicate-key, depth and size checks."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    # ------------------------------------------------------------------ composer: depth limit
    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                # types-PyYAML leaves Parser.peek_event unannotated
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    # ------------------------------------------------------------------ constructor: duplicate keys
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise ConstructorError(
                    None, None,
                    f"duplicate key {_short(key)!r} (first on line {first.start_mark.line + 1}, "
                    f"again on line {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _without_sexagesimal() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """SafeLoader's implicit resolvers with base-60 int and float removed (clock times stay strings)."""
    int_re = re.compile(r"""^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
    # YAML 1.1's floats without base 60, plus YAML 1.2's exponents without a dot (1e3, 1e-300)
    float_re = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X)
    out: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = []
        for tag, regexp in resolvers:
            if tag == "tag:yaml.org,2002:int":
                regexp = int_re
            elif tag == "tag:yaml.org,2002:float":
                regexp = float_re
            kept.append((tag, regexp))
        out[first] = kept
    return out


StrictLoader.yaml_implicit_resolvers = _without_sexagesimal()


def _short(value: Any, limit: int = 60) -> str:
    s = str(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _expanded_size(root: Node | None) -> tuple[int, int]:
    """(nodes, depth) of the document with aliases expanded, computed on the shared node graph."""
    if root is None:
        return 0, 0
    memo: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()  # nodes whose children are being sized: meeting one again is a cycle
    # iterative post-order over the node graph (aliases make shared children)
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in memo and not done:
            continue
        if not done and key in open_:
            raise _Recursive(node)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                children.extend((k, v))
        if not done:
            open_.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in memo)
            continue
        size, depth = 1, 0
        for c in children:
            cs, cd = memo.get(id(c), (1, 0))
            size += cs
            depth = max(depth, cd)
            if size > MAX_EXPANDED_NODES:
                break
        memo[key] = (min(size, MAX_EXPANDED_NODES + 1), depth + 1)
        open_.discard(key)
    return memo[id(root)]


class _Recursive(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def _duplicate_key(root: Node | None) -> tuple[str, str] | None:
    """The first duplicate key of the document as ``(dotted path, message)``, or ``None``."""
    if root is None:
        return None
    seen_nodes: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, Node] = {}
            children = []
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    name = str(k.value)
                    if name in first:
                        where = f"{path}.{name}" if path else name
                        return where, (f"duplicate key (first on line {first[name].start_mark.line + 1}, again on "
                                       f"line {k.start_mark.line + 1}); YAML keeps only one, so give it once")
                    first[name] = k
                    children.append((v, f"{path}.{name}" if path else name))
                else:
                    children.append((v, path))
            stack.extend(reversed(children))
        elif isinstance(node, SequenceNode):
            stack.extend((c, f"{path}.{i}" if path else str(i)) for i, c in reversed(list(enumerate(node.value))))
    return None


def load_yaml_text(text: str, source: str | Path | None = None) -> Any:
    """Parse YAML text with :class:`StrictLoader`.

    Raises
    ------
    ScenarioError
        ``source: not valid YAML (line L, column C: problem)``, too deep, too large; a duplicate key
        as ``source: dotted.path: duplicate key (first on line A, again on line B)``.
    """
    loader = None
    try:
        loader = StrictLoader(text)
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ScenarioError(source, [("", f"not valid YAML (nesting deeper than {MAX_DEPTH} levels)")]) from None
        try:
            size, depth = _expanded_size(node)
        except _Recursive as rec:
            m = rec.node.start_mark
            raise ScenarioError(source, [("", (f"not valid YAML (line {m.line + 1}, column {m.column + 1}: "
                                               "an alias refers to the node that contains it)"))]) from None
        if size > MAX_EXPANDED_NODES:
            raise ScenarioError(source, [("", (f"not valid YAML (more than {MAX_EXPANDED_NODES:,} values once its "
                                               "aliases are expanded; is it an alias bomb?)"))])
        if depth > MAX_DEPTH:
            raise ScenarioError(source, [("", (f"not valid YAML (nesting deeper than {MAX_DEPTH} levels once its "
                                               "aliases are expanded)"))])
        dup = _duplicate_key(node)
        if dup is not None:
            raise ScenarioError(source, [dup])
        if node is None:
            return None
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or _short(" ".join(str(exc).split()), 200)
        if isinstance(exc, ConstructorError) and "could not determine a constructor" in str(problem):
            m = re.search(r"tag '([^']*)'", str(problem))
            tag = (m.group(1) if m else "?").replace("tag:yaml.org,2002:", "!!")
            problem = f"tag {_short(tag)} is not allowed (plain YAML only)"
        raise ScenarioError(source, [("", f"not valid YAML ({where}{_short(problem, 200)})")]) from None
    except RecursionError:
        raise ScenarioError(source, [("", f"not valid YAML (nesting deeper than {MAX_DEPTH} levels)")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> str:
    """Read a UTF-8 text file that must be a regular file of at most ``max_bytes``.

    Raises
    ------
    ScenarioError
        One line naming the file: missing, a directory, a FIFO/device/socket, unreadable, a name too
        long, too large, or not UTF-8 (with the line of the first bad byte).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ScenarioError(p, [("", f"{what} not found")]) from None
    except OSError as exc:
        raise ScenarioError(p, [("", f"cannot read the {what} ({_strerror(exc)})")]) from None
    if stat.S_ISDIR(st.st_mode):
        raise ScenarioError(p, [("", f"is a directory, not a {what}")])
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ScenarioError(p, [("", f"is {kind}, not a regular {what}")])
    if st.st_size > max_bytes:
        raise ScenarioError(p, [("", f"too large for a {what} ({st.st_size:,} bytes; at most {max_bytes:,})")])
    try:
        with open(p, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ScenarioError(p, [("", f"cannot read the {what} ({_strerror(exc)})")]) from None
    if len(raw) > max_bytes:
        raise ScenarioError(p, [("", f"too large for a {what} (more than {max_bytes:,} bytes)")])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(p, [("", f"not a UTF-8 text file (byte 0x{raw[exc.start]:02x} on line {line})")]) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ScenarioError(p, [("", f"not a text file (a NUL byte on line {line})")])
    return text


def load_yaml(path: str | Path, *, what: str = "YAML file") -> Any:
    """Read and parse a YAML file (see module docs); every problem is one :class:`ScenarioError` line."""
    return load_yaml_text(read_text_file(path, what=what), path)


def _strerror(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or type(exc).__name__
