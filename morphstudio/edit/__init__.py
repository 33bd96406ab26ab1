"""Attribute edits: labellers that score faces, and (elsewhere in this package) the directions fitted from them.

Importing this package is cheap: nothing here imports torch, mediapipe or onnxruntime at import time; each
labeller imports what it needs when it first runs.
"""
