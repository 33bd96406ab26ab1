"""Attribute directions: fitting (:mod:`.fit`), disentangling (:mod:`.disentangle`), unsupervised directions
(:mod:`.unsupervised`), the direction file format and library (:mod:`.directions`), the out-of-distribution guard
(:mod:`.guard`) and sweep / analogy / map grids (:mod:`.grids`).

Importing this package imports nothing heavy: :mod:`.directions` and :mod:`.guard` are numpy-only (the timeline
uses them); the modules that run a generator import torch themselves.
"""
