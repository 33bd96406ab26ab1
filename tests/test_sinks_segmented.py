"""The segmented video writer on its own: serialisable segments, a segment encoded by another process and
committed by the driver, verified commits and resume, and what an abort leaves behind."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import decode

from morphstudio.errors import RenderError
from morphstudio.sinks.base import StreamInfo
from morphstudio.sinks.segmented import Segment, SegmentedVideoWriter, parts_dir_for, segment_sink

W, H, FPS = 16, 16, 24.0
RANGES = [(0, 6), (6, 12), (12, 15)]


def frames_for(start: int, stop: int) -> np.ndarray:
    """Deterministic, distinct test frames (ffv1 keeps them bit for bit)."""
    rs = np.random.RandomState(1000 + start)
    return rs.randint(0, 256, size=(stop - start, H, W, 3), dtype=np.uint8)


def writer(out: Path, resume: bool = False, fingerprint: str = "fp") -> SegmentedVideoWriter:
    return SegmentedVideoWriter(out, codec="ffv1", crf=None, width=W, height=H, fps=FPS, frames=range(15),
                                segments=RANGES, fingerprint=fingerprint, identity={"fit": "fill"}, batch=3,
                                threads=1, resume=resume)


def encode(w: SegmentedVideoWriter, seg: Segment) -> None:
    sink = w.segment_sink(seg)
    sink.open(StreamInfo(W, H, FPS, len(seg), seg.start))
    sink.write(seg.start, frames_for(seg.start, seg.stop))
    sink.close()
    w.commit(seg, "digest-" + seg.key)


def test_segment_round_trips_through_json() -> None:
    seg = Segment(12, 24, "seg_000012-000024.mkv", "ffv1", None, 64, 48, 29.97, 2, "fp", 4, 1)
    data = json.loads(json.dumps(seg.to_dict()))
    assert Segment.from_dict(data) == seg
    assert data["start"] == 12 and data["file"] == "seg_000012-000024.mkv" and data["batch"] == 4
    with pytest.raises(RenderError, match="unknown key.*colour"):
        Segment.from_dict({**data, "colour": 1})
    with pytest.raises(RenderError, match="missing key.*fingerprint"):
        Segment.from_dict({k: v for k, v in data.items() if k != "fingerprint"})
    with pytest.raises(RenderError, match=r"segment.file: expected a plain file name, got '\.\./x.mkv'"):
        Segment.from_dict({**data, "file": "../x.mkv"})
    with pytest.raises(RenderError, match="segment.width: expected a whole number, got '64'"):
        Segment.from_dict({**data, "width": "64"})
    with pytest.raises(RenderError, match="frame range 5..5 is empty"):
        Segment.from_dict({**data, "start": 5, "stop": 5})
    # A slideshow's half a frame per second is a valid rate (the scene allows any fps above 0); 0 is not.
    slow = Segment.from_dict({**data, "fps": 0.5})
    assert slow.fps == 0.5
    with pytest.raises(RenderError, match="segment.fps: expected a positive number, got 0"):
        Segment.from_dict({**data, "fps": 0})


def test_a_segment_encoded_in_another_process_is_committed_by_the_driver(tmp_path: Path) -> None:
    out = tmp_path / "v.mkv"
    w = writer(out)
    w.open()
    todo = w.missing_segments()
    assert [(s.start, s.stop) for s in todo] == RANGES
    # The middle segment goes to "a worker": it gets only the segment's JSON and the parts folder.
    remote = todo[1]
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sinks_segmented import frames_for
        from morphstudio.sinks.base import StreamInfo
        from morphstudio.sinks.segmented import Segment, segment_sink
        from pathlib import Path
        seg = Segment.from_dict(json.loads(sys.argv[1]))
        sink = segment_sink(seg, Path(sys.argv[2]), tag="worker7")
        sink.open(StreamInfo(seg.width, seg.height, seg.fps, len(seg), seg.start))
        sink.write(seg.start, frames_for(seg.start, seg.stop))
        sink.close()
        print(sink.temp_path)
    """)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(remote.to_dict()), str(w.parts)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    part = Path(done.stdout.strip())
    assert part.parent == w.parts and part.name == ".seg_000006-000012.mkv.worker7.partial"
    sha = hashlib.sha256(part.read_bytes()).hexdigest()
    w.commit(remote, "digest-remote", file=part, sha256=sha)
    for seg in (todo[0], todo[2]):
        encode(w, seg)
    manifest = json.loads((w.parts / "manifest.json").read_text())
    assert manifest["segments"]["6-12"]["sha256"] == sha and manifest["segments"]["6-12"]["frames"] == 6
    assert manifest["plan"] == {"batch": 3, "threads": 1}
    w.finish()
    _, got = decode(out)
    np.testing.assert_array_equal(got, np.concatenate([frames_for(s, e) for s, e in RANGES]))
    assert not w.parts.exists() and not (tmp_path / ".v.mkv.lock").exists()


def test_commit_refuses_a_file_whose_hash_differs_from_the_reported_one(tmp_path: Path) -> None:
    w = writer(tmp_path / "v.mkv")
    w.open()
    seg = w.missing_segments()[0]
    sink = segment_sink(seg, w.parts, tag="t")
    sink.open(StreamInfo(W, H, FPS, len(seg), seg.start))
    sink.write(seg.start, frames_for(seg.start, seg.stop))
    sink.close()
    with pytest.raises(RenderError, match="content hash differs from the one its encoder reported"):
        w.commit(seg, "d", file=sink.temp_path, sha256="0" * 64)
    assert "0-6" not in json.loads((w.parts / "manifest.json").read_text())["segments"]
    assert not (w.parts / seg.file).exists()
    with pytest.raises(RenderError, match="never finished"):
        w.finish()
    w.abort()


def test_resume_reuses_only_verified_segments(tmp_path: Path) -> None:
    out = tmp_path / "v.mkv"
    first = writer(out)
    first.open()
    a, b, _ = first.missing_segments()
    encode(first, a)
    encode(first, b)
    first.abort()  # interrupted: the two committed segments stay
    assert sorted(p.name for p in parts_dir_for(out).glob("seg_*")) == ["seg_000000-000006.mkv",
                                                                         "seg_000006-000012.mkv"]
    # Damage the second one after the fact: resume must render it again.
    f = parts_dir_for(out) / "seg_000006-000012.mkv"
    f.write_bytes(f.read_bytes()[:-10] + b"\0" * 10)
    notes: list[str] = []
    again = SegmentedVideoWriter(out, codec="ffv1", crf=None, width=W, height=H, fps=FPS, frames=range(15),
                                 segments=RANGES, fingerprint="fp", identity={"fit": "fill"}, batch=3, threads=1,
                                 resume=True, note=notes.append)
    again.open()
    asked: list[str] = []

    def digest_of(seg: Segment) -> str:
        asked.append(seg.key)
        return "digest-" + seg.key

    todo = again.missing_segments(digest_of)
    assert [(s.start, s.stop) for s in todo] == [(6, 12), (12, 15)]
    assert asked == ["0-6", "6-12"]  # only recorded segments need their latents checked
    assert any("seg_000006-000012.mkv) changed since it was written" in n for n in notes), notes
    for seg in todo:
        encode(again, seg)
    again.finish()
    np.testing.assert_array_equal(decode(out)[1], np.concatenate([frames_for(s, e) for s, e in RANGES]))


def test_other_latents_mean_the_segment_is_rendered_again(tmp_path: Path) -> None:
    out = tmp_path / "v.mkv"
    first = writer(out)
    first.open()
    encode(first, first.missing_segments()[0])
    first.abort()
    again = writer(out, resume=True)
    again.open()
    todo = again.missing_segments(lambda seg: "other")
    assert [(s.start, s.stop) for s in todo] == RANGES
    again.abort()


def test_a_commit_moves_the_encoding_rather_than_copying_it(tmp_path: Path) -> None:
    """While a long render runs, the parts folder holds each finished segment once (no second copy under its
    unfinished name eating the disk)."""
    out = tmp_path / "v.mkv"
    w = writer(out)
    w.open()
    try:
        encode(w, w.missing_segments()[0])
        assert sorted(p.name for p in parts_dir_for(out).iterdir()) == ["manifest.json", "seg_000000-000006.mkv"]
    finally:
        w.abort()


def test_abort_before_any_commit_leaves_nothing_behind(tmp_path: Path) -> None:
    """The issue-7 finding: a failure before the first committed segment left an empty parts folder (only a
    manifest) and the folders it created."""
    out = tmp_path / "new" / "deeper" / "v.mkv"
    w = writer(out)
    w.open()
    seg = w.missing_segments()[0]
    sink = w.segment_sink(seg)
    sink.open(StreamInfo(W, H, FPS, len(seg), seg.start))
    sink.write(seg.start, frames_for(0, 3))
    sink.abort()
    w.abort()
    assert list(tmp_path.iterdir()) == []
    w.abort()  # twice is harmless


def test_abort_after_a_commit_keeps_it_for_resume(tmp_path: Path) -> None:
    out = tmp_path / "new" / "v.mkv"
    w = writer(out)
    w.open()
    first, second = w.missing_segments()[:2]
    encode(w, first)
    # A worker in another process was still encoding the second segment when the driver gave up: its
    # unfinished file goes (the driver owns the folder), the committed segment stays.
    w.partial_file(second, "worker-3").write_bytes(b"half a segment")
    w.abort()
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [".v.mkv.parts"]
    assert sorted(p.name for p in parts_dir_for(out).iterdir()) == ["manifest.json", "seg_000000-000006.mkv"]


def test_the_writer_holds_the_output_lock(tmp_path: Path) -> None:
    out = tmp_path / "v.mkv"
    w = writer(out)
    w.open()
    try:
        with pytest.raises(RenderError, match="is being written by another render"):
            writer(out).open()
        assert parts_dir_for(out).is_dir()  # the refused writer did not touch the first one's folder
    finally:
        w.abort()
    assert not (tmp_path / ".v.mkv.lock").exists()
