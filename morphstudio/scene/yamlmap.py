"""YAML loading that remembers the line of every mapping key and sequence item.

Error messages for scenes name ``file:line: field``; pydantic only knows the field path, so the loader keeps a
``{path tuple: line}`` map built from PyYAML's node tree (``compose``), and converts the nodes to plain Python
data itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from morphstudio.errors import SceneError

Path_ = tuple[str | int, ...]


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
    """SafeLoader: plain data only (no Python objects from tags)."""


def _convert(loader: _Loader, node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str | None) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise SceneError("mapping keys must be plain names", file=file, line=key_node.start_mark.line + 1,
                                 field=format_field(path) or None)
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
            out[key] = _convert(loader, value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_convert(loader, item, path + (i,), lines, file))
        return items
    return loader.construct_object(node, deep=True)


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
    lines: dict[Path_, int] = {}
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SceneError("the scene file is empty (expected a mapping with model:, faces:, timeline: ...)",
                             file=file, line=1)
        lines[()] = node.start_mark.line + 1
        data = _convert(loader, node, (), lines, file)
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
        raise SceneError(f"YAML syntax error: {exc}", file=file) from None
    finally:
        loader.dispose()
    return data, Locator(file=file, lines=lines)


def read_scene_text(path: Path, display: str) -> str:
    """Read a scene file as UTF-8, turning I/O problems into :class:`SceneError`."""
    if not path.exists():
        raise SceneError("scene file not found", file=display)
    if path.is_dir():
        raise SceneError("is a folder, not a scene file", file=display)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SceneError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", file=display) from None
    except OSError as exc:
        raise SceneError(f"cannot read the scene file: {exc.strerror}", file=display) from None
