"""Labellers: functions from face images to attribute scores, all offline.

``get_labeller(spec)`` is the one entry point::

    from morphstudio.edit.labels import get_labeller
    lab = get_labeller("all")                 # geometry + age-gender
    scores = lab(images)                      # uint8 [N, H, W, 3] RGB -> float64 [N, len(lab.labels)]
    [info.name for info in lab.labels]        # smile, smile_lift, mouth_open, ..., age, gender

A row is all NaN where no face was found. Specs: ``geometry``, ``age-gender``, ``all``, ``module:function``,
``folder:PATH``, ``csv:PATH`` (see :func:`get_labeller`).
"""

from morphstudio.edit.labels.base import LabelInfo, Labeller, LabellerError
from morphstudio.edit.labels.select import get_labeller

__all__ = ["LabelInfo", "Labeller", "LabellerError", "get_labeller"]
