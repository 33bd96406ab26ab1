"""Attribute edits: labellers that score faces (:mod:`.labels`), fitting (:mod:`.fit`), disentangling
(:mod:`.disentangle`), unsupervised directions (:mod:`.unsupervised`), the direction file format and library
(:mod:`.directions`), the out-of-distribution guard (:mod:`.guard`) and sweep / analogy / map grids (:mod:`.grids`).

Importing this package is cheap: nothing here imports torch, mediapipe or onnxruntime at import time
(:mod:`.directions` and :mod:`.guard` are numpy-only: the timeline uses them); each module that runs a generator
or a labeller imports what it needs when it first runs.
"""
