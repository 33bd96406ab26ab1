"""YAML loading that remembers the line of every mapping key and sequence item.

Error messages for scenes name ``file:line: field``; pydantic only knows the field path, so the loader keeps a
``{path tuple: line}`` map built from PyYAML's node tree (``compose``), and converts the nodes to plain Python
data itself.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from morphstudio.errors import SceneError

Path_ = tuple[str | int, ...]

MAX_SCENE_BYTES = 16 * 2**20
"""A scene file larger than this is refused before it is read (real scenes are a few kilobytes)."""
MAX_YAML_NODES = 200_000
"""Values (mappings, lists, scalars) a scene may expand to, aliases counted each time they are used: the demo has
about 100, so this only stops alias bombs (a 695-byte "billion laughs" file expands to 10**9)."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists (a scene needs about 5); deeper text would exhaust Python's stack."""

# YAML 1.2 reads 1e9 and 1E-3 as numbers; PyYAML's YAML 1.1 float pattern needs a dot and a signed exponent, so
# they became strings. This extra pattern only matches what the 1.1 one does not (an exponent without a dot or
# without a sign), so every value that was a number before stays the same number.
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
# Characters a scene file must not contain: C0 controls except tab / line feed / carriage return, DEL and the C1
# controls. PyYAML's own check reports a character position, not a line, and over several lines.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def format_field(path: Path_) -> str:
    """``("timeline", 2, "at")`` -> ``timeline[2].at``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Locator:
    """Turns a field path into ``file:line: field: problem`` errors.

    Attributes:
        file: The scene file as the user named it (None for scenes built from Python data).
        lines: 1-based line of every mapping key / sequence item, by path.
    """

    file: str | None = None
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one (a missing key points at its parent)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: Path_, problem: str, *, hint: str | None = None) -> SceneError:
        """A :class:`SceneError` for ``path`` (returned, not raised, so callers write ``raise loc.error(...)``)."""
        return SceneError(problem, file=self.file, line=self.line(path), field=format_field(path) or None, hint=hint)


class _Loader(yaml.SafeLoader):
    """SafeLoader: plain data only (no Python objects from tags), YAML 1.2 exponent floats, bounded nesting.

    Args:
        text: The YAML source.
        file: Name to use in error messages.
    """

    def __init__(self, text: str, file: str | None = None) -> None:
        super().__init__(text)
        self.file = file
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # The composer recurses once per nesting level: bound it here, before Python's stack gives out.
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise SceneError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels", file=self.file,
                                 line=mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# On the subclass only (PyYAML copies the resolver table for it): SafeLoader itself is left alone.
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


class _Budget:
    """Counts the values a document expands to, so aliases cannot multiply work without limit."""

    def __init__(self, file: str | None, lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines  # where each path is written: an expanded alias has no line of its own
        self.nodes = 0
        self.open: set[int] = set()  # ids of the collections being converted (an alias back to one is recursion)

    def enter(self, node: yaml.Node, path: Path_) -> None:
        self.nodes += 1
        line = self.lines.get(path, node.start_mark.line + 1)
        where = format_field(path) or None
        # For the two limits, name the top-level key being expanded: the full path of the millionth (or the
        # 65-deep) value says little.
        top = path[:1]
        if self.nodes > MAX_YAML_NODES:
            raise SceneError(f"the YAML expands to more than {MAX_YAML_NODES} values (aliases repeat what they "
                             "point to: is this an alias bomb?)", file=self.file,
                             line=self.lines.get(top, line), field=format_field(top) or None)
        if len(path) > MAX_YAML_DEPTH:
            raise SceneError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels (through aliases)",
                             file=self.file, line=self.lines.get(top, line), field=format_field(top) or None)
        if id(node) in self.open:
            raise SceneError("a YAML alias refers to a value that contains it (recursive alias)", file=self.file,
                             line=line, field=where)


def _convert(loader: _Loader, node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str | None,
             budget: _Budget) -> Any:
    budget.enter(node, path)
    if isinstance(node, yaml.MappingNode):
        budget.open.add(id(node))
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                # Refused before construction: a list or mapping key could be an alias to anything.
                raise SceneError("mapping keys must be plain names", file=file, line=key_node.start_mark.line + 1,
                                 field=format_field(path) or None)
            key = loader.construct_object(key_node, deep=True)
            if key == "<<":
                raise SceneError("YAML merge keys (<<) are not supported in scenes", file=file,
                                 line=key_node.start_mark.line + 1, field=format_field(path) or None)
            key = key if isinstance(key, str) else str(key)
            if key in out:
                raise SceneError(
                    f"duplicate key {key!r} (first given on line {lines[path + (key,)]})",
                    file=file, line=key_node.start_mark.line + 1, field=format_field(path + (key,)),
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, path + (key,), lines, file, budget)
        budget.open.discard(id(node))
        return out
    if isinstance(node, yaml.SequenceNode):
        budget.open.add(id(node))
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_convert(loader, item, path + (i,), lines, file, budget))
        budget.open.discard(id(node))
        return items
    return loader.construct_object(node, deep=True)


def _check_characters(text: str, file: str | None) -> None:
    """Refuse control characters (a NUL byte...) with the line and column of the first one."""
    bad = _CONTROL.search(text)
    if bad is None:
        return
    line = text.count("\n", 0, bad.start()) + 1
    column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
    code = ord(bad.group())
    name = {0: " (NUL)", 0x1B: " (ESC)", 0x7F: " (DEL)"}.get(code, "")
    raise SceneError(f"control character U+{code:04X}{name} at column {column}: a scene must be plain text",
                     file=file, line=line)


def load_yaml(text: str, file: str | None = None) -> tuple[Any, Locator]:
    """Parse one YAML document, keeping line numbers.

    Args:
        text: The YAML source.
        file: Name to use in error messages.

    Returns:
        ``(data, locator)``; ``data`` is plain dicts/lists/scalars.

    Raises:
        SceneError: On a syntax error (with its line) or an empty document.
    """
    _check_characters(text, file)
    lines: dict[Path_, int] = {}
    loader = _Loader(text, file)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SceneError("the scene file is empty (expected a mapping with model:, faces:, timeline: ...)",
                             file=file, line=1)
        lines[()] = node.start_mark.line + 1
        data = _convert(loader, node, (), lines, file, _Budget(file, lines))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at_end = "<stream end>" in str(exc.problem) or "end of the stream" in str(exc.problem)
        if exc.context_mark is not None and at_end:
            # An unclosed bracket is reported at the end of the file; the line where it opened is more useful.
            mark = exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}, {exc.problem}"
        raise SceneError(f"YAML syntax error: {problem}", file=file,
                         line=None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as exc:
        raise SceneError("YAML syntax error: " + " ".join(str(exc).split()), file=file) from None
    finally:
        loader.dispose()
    return data, Locator(file=file, lines=lines)


def file_kind(mode: int) -> str:
    """``a FIFO``, ``a character device``...: what a non-regular file is, for messages."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_scene_text(path: Path, display: str) -> str:
    """Read a scene file as UTF-8, turning I/O problems into :class:`SceneError`.

    The file's type and size are checked before it is opened: a FIFO would block the read forever, and a huge
    file would be read whole.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SceneError("scene file not found", file=display) from None
    except OSError as exc:
        raise SceneError(f"cannot read the scene file: {exc.strerror}", file=display) from None
    if stat.S_ISDIR(st.st_mode):
        raise SceneError("is a folder, not a scene file", file=display)
    if not stat.S_ISREG(st.st_mode):
        raise SceneError(f"is not a regular file ({file_kind(st.st_mode)}), not a scene file", file=display)
    if st.st_size > MAX_SCENE_BYTES:
        raise SceneError(f"the scene file is {st.st_size} bytes; at most {MAX_SCENE_BYTES} are read", file=display)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SceneError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", file=display) from None
    except OSError as exc:
        raise SceneError(f"cannot read the scene file: {exc.strerror}", file=display) from None
