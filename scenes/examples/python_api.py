"""The same kind of scene as the YAML examples, built in Python (run from the repository root).

    .venv/bin/python scenes/examples/python_api.py            # prints the summary and latent shapes
    .venv/bin/python scenes/examples/python_api.py --render   # also writes media/examples/python-api.mp4
"""

from __future__ import annotations

import sys
from pathlib import Path

import morphstudio
from morphstudio.scene.schema import FaceSpec, Keyframe, LoopSpec, OutputSpec, SceneSpec

ROOT = Path(__file__).resolve().parents[2]

# A plain dict reads like the YAML file ...
scene = morphstudio.load_scene(
    {
        "model": "builtin:dcgan-faces64",
        "loop": True,
        "interp": "cubic",
        "output": {"path": "media/examples/python-api.mp4", "size": 256, "fps": 24, "duration": 6},
        "faces": {"a": {"seed": 1}, "b": {"seed": 4}, "mid": {"average": ["a", "b"], "psi": 1.4}},
        "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "mid"}, {"at": 4, "face": "b"}],
        "loops": [{"amplitude": 0.5, "period": 3}],
    },
    base_dir=ROOT,  # relative paths in a dict are relative to this folder
)

# ... and typed objects give editor completion and type checks.
same = morphstudio.load_scene(
    SceneSpec(
        loop=True,
        interp="cubic",
        output=OutputSpec(path="media/examples/python-api.mp4", size=256, fps=24, duration=6),
        faces={"a": FaceSpec(seed=1), "b": FaceSpec(seed=4), "mid": FaceSpec(average=["a", "b"], psi=1.4)},
        timeline=[Keyframe(at=0, face="a"), Keyframe(at=2, face="mid"), Keyframe(at=4, face="b")],
        loops=[LoopSpec(amplitude=0.5, period=3)],
    ),
    base_dir=ROOT,
)
assert scene.fingerprint() == same.fingerprint()

print(scene.summary())
ws = scene.latents(range(scene.frame_count))  # numpy [T, num_ws, w_dim] float32
print("latents:", ws.shape, ws.dtype)
print("loop closes:", all(item.closed for item in scene.closure()))
if "--render" in sys.argv:
    morphstudio.render(scene)
