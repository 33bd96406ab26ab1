"""``get_labeller(spec)``: a labeller from its spec (kept apart from ``base`` so that the labellers, which import
``base``, are not imported back by it)."""

from __future__ import annotations

from pathlib import Path

from morphstudio.edit.labels.base import BUILTIN_SPECS, CombinedLabeller, Labeller, LabellerError


def get_labeller(spec: str) -> Labeller:
    """The labeller a spec names.

    Args:
        spec: ``geometry`` (mediapipe face-mesh measures), ``age-gender`` (dlib's ONNX networks), ``all`` (both),
            ``module:function`` (a Python function ``images -> scores``, imported by name), ``folder:PATH`` (one
            subfolder per label value, images inside) or ``csv:PATH`` (``seed,label`` columns, for seeds).

    Returns:
        A labeller; ``folder:`` and ``csv:`` ones also expose the labelled items (see
        :mod:`morphstudio.edit.labels.user`).

    Raises:
        LabellerError: Unknown name, or a user labeller that cannot be loaded (one line saying why).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise LabellerError(f"labeller spec must be a non-empty string, got {spec!r}; "
                            f"use one of {', '.join(BUILTIN_SPECS)}, module:function, folder:PATH or csv:PATH")
    spec = spec.strip()
    if spec == "geometry":
        from morphstudio.edit.labels.geometry import GeometryLabeller

        return GeometryLabeller()
    if spec == "age-gender":
        from morphstudio.edit.labels.age_gender import AgeGenderLabeller

        return AgeGenderLabeller()
    if spec == "all":
        from morphstudio.edit.labels.age_gender import AgeGenderLabeller
        from morphstudio.edit.labels.geometry import GeometryLabeller

        return CombinedLabeller([GeometryLabeller(), AgeGenderLabeller()])
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("folder", "csv") and not rest.strip():
        raise LabellerError(f"labeller {spec!r}: give a {'folder' if kind == 'folder' else 'file'} after '{kind}:'")
    if sep and kind == "folder":
        from morphstudio.edit.labels.user import FolderLabeller

        return FolderLabeller(Path(rest))
    if sep and kind == "csv":
        from morphstudio.edit.labels.user import CsvLabeller

        return CsvLabeller(Path(rest))
    if sep and kind and rest:
        from morphstudio.edit.labels.user import FunctionLabeller

        return FunctionLabeller(kind, rest)
    raise LabellerError(f"unknown labeller {spec!r}: use one of {', '.join(BUILTIN_SPECS)}, module:function, "
                        "folder:PATH or csv:PATH")
