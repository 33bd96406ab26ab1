"""A user's own labels: a Python function, a folder of labelled images, or a CSV of labels for seeds.

- ``module:function`` — ``function(images uint8 [N, H, W, 3]) -> scores [N] or [N, K]``, imported by name (the
  module must be importable: on ``sys.path`` or in the current folder). Its labels are named by a ``labels``
  attribute on the function (names or :class:`LabelInfo`) when it has one, else after the function.
- ``folder:PATH`` — one subfolder per label value, images inside (``smiling/`` and ``neutral/``, or ``0/``, ``1/``,
  ``2.5/``). Numeric folder names are the values; otherwise the names, sorted, are classes 0, 1, .... The fitting
  side encodes :attr:`FolderLabeller.paths` with the encoder and takes the mean difference per
  :attr:`FolderLabeller.values`, as NVIDIA's DIGITS demo does. Called on images, it returns the folder label of
  each image that is one of its own (matched by pixels) and NaN for any other.
- ``csv:PATH`` — a ``seed`` column and one or more label columns (a header row names them); for latents made
  from those seeds. It labels seeds (:meth:`CsvLabeller.for_seeds`), not images.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.edit.labels.base import LabelInfo, LabellerError, check_images

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_FOLDER_IMAGES = 100_000
MAX_CSV_BYTES = 64 * 2**20
MAX_CSV_ROWS = 1_000_000


class FunctionLabeller:
    """A Python function ``images -> scores`` named ``module:function``."""

    def __init__(self, module: str, function: str) -> None:
        self.spec = f"{module}:{function}"
        # The current folder is where a user keeps a one-off labeller (python -m would look there too); it is on
        # the import path only while this import runs.
        added = "" not in sys.path and "." not in sys.path
        if added:
            sys.path.append(".")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise LabellerError(f"labeller {self.spec!r}: no module named {exc.name!r} (is it on PYTHONPATH or "
                                "in the current folder?)") from None
        except Exception as exc:  # noqa: BLE001 - the user's module failed while importing: one line says so
            raise LabellerError(f"labeller {self.spec!r}: importing {module!r} failed: "
                                f"{type(exc).__name__}: {exc}") from None
        finally:
            if added and "." in sys.path:
                sys.path.remove(".")
        fn = mod
        for part in function.split("."):
            if not hasattr(fn, part):
                raise LabellerError(f"labeller {self.spec!r}: module {module!r} has no attribute {function!r}")
            fn = getattr(fn, part)
        if not callable(fn):
            raise LabellerError(f"labeller {self.spec!r}: {function!r} is a {type(fn).__name__}, not a function")
        self.function: Callable[[np.ndarray], Any] = fn
        self.labels: tuple[LabelInfo, ...] = self._infos(getattr(fn, "labels", None), function.split(".")[-1])

    def _infos(self, declared: Any, default: str) -> tuple[LabelInfo, ...]:
        if declared is None:
            return (LabelInfo(default, "score", f"scores from the user's labeller {self.spec}"),)
        if isinstance(declared, (str, LabelInfo)):
            declared = [declared]
        infos = []
        for item in declared:
            if isinstance(item, LabelInfo):
                infos.append(item)
            elif isinstance(item, str) and item:
                infos.append(LabelInfo(item, "score", f"scores from the user's labeller {self.spec}"))
            else:
                raise LabellerError(f"labeller {self.spec!r}: its labels attribute must hold names or LabelInfo, "
                                    f"got {item!r}")
        return tuple(infos)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        arr = check_images(images)
        try:
            raw = self.function(arr)
        except Exception as exc:  # noqa: BLE001 - the user's code failed: one line naming it, not our traceback
            raise LabellerError(f"labeller {self.spec!r} failed: {type(exc).__name__}: {exc}") from None
        try:
            out = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise LabellerError(f"labeller {self.spec!r} returned {type(raw).__name__}, not numbers") from None
        if out.ndim == 1:
            out = out[:, None]
        k = len(self.labels)
        if out.shape != (len(arr), k):
            raise LabellerError(f"labeller {self.spec!r} returned shape {list(out.shape)} for {len(arr)} images; "
                                f"expected [{len(arr)}]" + (f" or [{len(arr)}, {k}]" if k > 1 else ""))
        return out


def _pixel_key(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes() + str(pixels.shape).encode()).hexdigest()


class FolderLabeller:
    """Labelled images in ``PATH/<label value>/*.jpg``.

    Attributes:
        root: The folder.
        classes: Subfolder names, in value order.
        paths: Every image, sorted by class then name.
        values: ``[len(paths)]`` float64, each image's label value.
        labels: One :class:`LabelInfo` named after the folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        shown = str(root)
        if not root.exists():
            raise LabellerError(f"labeller folder {shown}: no such folder")
        if not root.is_dir():
            raise LabellerError(f"labeller folder {shown}: is a file, not a folder of labelled subfolders")
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(subs) < 2:
            raise LabellerError(f"labeller folder {shown}: needs at least two subfolders, one per label value "
                                f"(e.g. smiling/ and neutral/), found {len(subs)}")
        numeric = [_number(p.name) for p in subs]
        if all(v is not None for v in numeric):
            order = sorted(range(len(subs)), key=lambda i: numeric[i])  # type: ignore[arg-type, return-value]
            values = [float(numeric[i]) for i in order]  # type: ignore[arg-type]
            unit = "value"
        else:
            order = list(range(len(subs)))
            values = [float(i) for i in order]
            unit = "class"
        self.classes: tuple[str, ...] = tuple(subs[i].name for i in order)
        paths: list[Path] = []
        vals: list[float] = []
        for cls, value in zip(self.classes, values):
            imgs = sorted(p for p in (root / cls).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not imgs:
                raise LabellerError(f"labeller folder {shown}: subfolder {cls!r} holds no images "
                                    f"({', '.join(IMAGE_SUFFIXES)})")
            paths += imgs
            vals += [value] * len(imgs)
            if len(paths) > MAX_FOLDER_IMAGES:
                raise LabellerError(f"labeller folder {shown}: more than {MAX_FOLDER_IMAGES} images")
        self.paths: tuple[Path, ...] = tuple(paths)
        self.values = np.array(vals, dtype=np.float64)
        meaning = ", ".join(f"{v:g} = {c}" for c, v in zip(self.classes, values))
        name = root.resolve().name or "folder"
        self.labels: tuple[LabelInfo, ...] = (LabelInfo(name, unit, f"folder label from {root}: {meaning}"),)
        self._by_pixels: dict[str, float] | None = None

    def load_images(self) -> list[np.ndarray]:
        """Every image as uint8 RGB (one :class:`ImageInputError` line for an unreadable one)."""
        from morphstudio.faces.images import read_image

        return [read_image(p).pixels for p in self.paths]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        arr = check_images(images)
        if self._by_pixels is None:
            self._by_pixels = {_pixel_key(px): v for px, v in zip(self.load_images(), self.values)}
        return np.array([[self._by_pixels.get(_pixel_key(img), math.nan)] for img in arr], dtype=np.float64)


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


class CsvLabeller:
    """Labels for seeds from a CSV: a ``seed`` column and label columns.

    Attributes:
        seeds: ``[N]`` int64.
        values: ``[N, K]`` float64 (NaN for an empty cell).
        labels: One :class:`LabelInfo` per label column.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise LabellerError(f"{path}: " + ("is not a regular file" if path.exists() else "no such file"))
        if path.stat().st_size > MAX_CSV_BYTES:
            raise LabellerError(f"{path}: larger than {MAX_CSV_BYTES // 2**20} MiB; a label CSV is one short line "
                                "per seed")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LabellerError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        rows = [(n, r) for n, r in enumerate(csv.reader(text.splitlines()), 1) if r and any(c.strip() for c in r)]
        if not rows:
            raise LabellerError(f"{path}: empty; expected a header 'seed,LABEL' and one row per seed")
        line, header = rows[0]
        header = [h.strip() for h in header]
        if len(header) < 2 or header[0].lower() != "seed":
            raise LabellerError(f"{path}:{line}: the header must be 'seed,LABEL[,LABEL...]', got {','.join(header)!r}")
        if len(rows) - 1 > MAX_CSV_ROWS:
            raise LabellerError(f"{path}: more than {MAX_CSV_ROWS} rows")
        names = header[1:]
        for i, name in enumerate(names):
            if not name:
                raise LabellerError(f"{path}:{line}: column {i + 2} has no name")
        if len(set(names)) != len(names):
            raise LabellerError(f"{path}:{line}: duplicate label column names in {','.join(names)!r}")
        seeds: list[int] = []
        vals: list[list[float]] = []
        seen: dict[int, int] = {}
        for line, row in rows[1:]:
            if len(row) != len(header):
                raise LabellerError(f"{path}:{line}: {len(row)} values, the header has {len(header)}")
            cell = row[0].strip()
            try:
                seed = int(cell)
            except ValueError:
                raise LabellerError(f"{path}:{line}: seed {cell!r} is not a whole number") from None
            if not 0 <= seed < 2**32:
                raise LabellerError(f"{path}:{line}: seed {seed} is outside [0, 2**32)")
            if seed in seen:
                raise LabellerError(f"{path}:{line}: seed {seed} is labelled twice (first on line {seen[seed]})")
            seen[seed] = line
            row_vals = []
            for name, c in zip(names, row[1:]):
                c = c.strip()
                if not c:
                    row_vals.append(math.nan)
                    continue
                v = _number(c)
                if v is None:
                    raise LabellerError(f"{path}:{line}: {name} = {c!r} is not a finite number")
                row_vals.append(v)
            seeds.append(seed)
            vals.append(row_vals)
        if not seeds:
            raise LabellerError(f"{path}: has a header but no rows")
        self.seeds = np.array(seeds, dtype=np.int64)
        self.values = np.array(vals, dtype=np.float64).reshape(len(seeds), len(names))
        self.labels: tuple[LabelInfo, ...] = tuple(
            LabelInfo(n, "value", f"label {n!r} for seeds, from {path}") for n in names)

    def for_seeds(self, seeds: Any) -> np.ndarray:
        """``[len(seeds), K]`` labels of those seeds (NaN rows for seeds the CSV does not list)."""
        index = {int(s): i for i, s in enumerate(self.seeds)}
        out = np.full((len(seeds), len(self.labels)), np.nan)
        for j, s in enumerate(seeds):
            i = index.get(int(s))
            if i is not None:
                out[j] = self.values[i]
        return out

    def __call__(self, images: np.ndarray) -> np.ndarray:
        raise LabellerError(f"labeller csv:{self.path} labels seeds, not images: use its seeds and values "
                            "(for_seeds) when fitting from seeds")
