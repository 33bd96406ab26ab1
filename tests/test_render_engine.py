"""The engine against the in-memory writer double: which frame ranges it renders, in what order it feeds them,
that resume asks only for the missing ones, that latents come in bounded chunks, and that a failure aborts the
writer — no ffmpeg, no files. Plus, with the real writer, what a failing render leaves behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import TinyGen, expected_frames, tiny_latents
from test_render_video import assert_close_uint8

from morphstudio.errors import RenderError
from morphstudio.rendering import engine
from morphstudio.rendering.engine import LATENT_CHUNK, render_latents
from morphstudio.rendering.outputs import OutputSettings
from morphstudio.scene.schema import NoiseSpec
from morphstudio.sinks.testing import RecordingSegmentWriter

FPS = 24.0


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


def sha_of_latents(ws: np.ndarray) -> str:
    """The manifest's latents digest, by its definition: sha256 of the float32 bytes, first 32 hex digits."""
    return hashlib.sha256(np.ascontiguousarray(ws, dtype=np.float32).tobytes()).hexdigest()[:32]


def test_every_segment_is_fed_in_order_and_committed_with_its_frames(gen: TinyGen) -> None:
    n = 30
    fn = tiny_latents(n)
    ranges = [(0, 10), (10, 20), (20, 30)]
    w = RecordingSegmentWriter(ranges)
    render_latents(gen, fn, n, FPS, writer=w, batch=4, cpu_threads=1, jobs=1, progress=False)
    assert w.opened == [0, 10, 20]
    # Each segment's encoder gets its batches in frame order, split at the boundaries. (Across segments the
    # records may interleave: each segment's encoder is its own thread, and the next segment starts generating
    # while the last batch of the previous one is still being handed over.)
    per_segment = {start: [(f, k) for s, f, k in w.writes if s == start] for start, _ in ranges}
    assert per_segment == {0: [(0, 4), (4, 4), (8, 2)], 10: [(10, 4), (14, 4), (18, 2)],
                           20: [(20, 4), (24, 4), (28, 2)]}
    assert [seg.start for seg, _ in w.committed] == [0, 10, 20] and w.finished and not w.aborted
    assert_close_uint8(w.video(), expected_frames(gen, fn, range(n)))
    # Each commit carries the digest of exactly its segment's latents.
    assert [d for _, d in w.committed] == [sha_of_latents(fn(range(s, e))) for s, e in ranges]


def test_animated_noise_loops_over_the_scene_unless_told_otherwise(gen: TinyGen) -> None:
    """Animated noise's default period is the scene's duration, ``frame_count / fps`` when the caller gives
    none; a duration given is used."""
    n = 24
    fn = tiny_latents(n)

    def video(**kw: float) -> np.ndarray:
        w = RecordingSegmentWriter([(0, n)])
        render_latents(gen, fn, n, FPS, writer=w, batch=4, cpu_threads=1, jobs=1, progress=False,
                       noise=NoiseSpec(mode="animated"), **kw)
        return w.video()

    default = video()
    assert np.array_equal(default, video(duration=n / FPS))
    assert not np.array_equal(default, video(duration=2 * n / FPS))


def test_several_encoders_get_interleaved_batches_but_each_its_frames_in_order(gen: TinyGen) -> None:
    n = 24
    fn = tiny_latents(n)
    w = RecordingSegmentWriter([(0, 8), (8, 16), (16, 24)])
    render_latents(gen, fn, n, FPS, writer=w, batch=2, cpu_threads=1, jobs=2, progress=False)
    for start in (0, 8, 16):
        firsts = [f for s, f, _ in w.writes if s == start]
        assert firsts == sorted(firsts) and firsts[0] == start
    assert sum(k for *_, k in w.writes) == n
    assert_close_uint8(w.video(), expected_frames(gen, fn, range(n)))


def test_resume_renders_only_the_missing_ranges(gen: TinyGen) -> None:
    n = 30
    fn = tiny_latents(n)
    calls: list[tuple[int, int]] = []

    def counted(frames):
        frames = list(frames)
        calls.append((frames[0], frames[-1] + 1))
        return fn(frames)

    done = {(0, 10): sha_of_latents(fn(range(0, 10))),  # still valid
            (20, 30): "0" * 32}  # made from other latents: must be rendered again
    w = RecordingSegmentWriter([(0, 10), (10, 20), (20, 30)], done=done)
    res = render_latents(gen, counted, n, FPS, writer=w, batch=5, cpu_threads=1, jobs=1, progress=False)
    assert w.asked_digest == [0, 20]
    assert w.opened == [10, 20] and [s.start for s in w.reused] == [0]
    assert {f for _, f, _ in w.writes} == {10, 15, 20, 25}
    assert (0, 10) in calls  # its latents were read to check the digest, but nothing was generated from them
    assert res.frames == range(0, 30)
    assert_close_uint8(w.frames[10], expected_frames(gen, fn, range(10, 20)))
    assert_close_uint8(w.frames[20], expected_frames(gen, fn, range(20, 30)))


def test_a_long_segment_fetches_its_latents_in_bounded_chunks(gen: TinyGen, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3,600 s segment at 240 fps on an 18 x 512 model is ~31 GB of latents in one piece: they come in chunks
    of whole batches, and the frames and the digest are those of the whole segment."""
    n = 2 * LATENT_CHUNK + 40
    fn = tiny_latents(n)
    sizes: list[int] = []

    def counted(frames):
        frames = list(frames)
        sizes.append(len(frames))
        return fn(frames)

    w = RecordingSegmentWriter([(0, n)])
    render_latents(gen, counted, n, FPS, writer=w, batch=3, cpu_threads=1, progress=False)
    chunk = LATENT_CHUNK // 3 * 3  # 255: whole batches of 3
    assert sizes == [chunk, chunk, n - 2 * chunk]
    # Batches split exactly as in one piece: every batch has 3 frames but the last (n = 552 = 184 x 3).
    assert [k for *_, k in w.writes] == [3] * (n // 3)
    assert w.committed[0][1] == sha_of_latents(fn(range(n)))
    assert_close_uint8(w.video(), expected_frames(gen, fn, range(n)))
    # Bit for bit the frames of the segment fetched in one piece (as before the chunks).
    monkeypatch.setattr(engine, "LATENT_CHUNK", 10**6)
    whole = RecordingSegmentWriter([(0, n)])
    render_latents(gen, fn, n, FPS, writer=whole, batch=3, cpu_threads=1, progress=False)
    np.testing.assert_array_equal(w.video(), whole.video())


def test_a_failure_aborts_the_writer_and_finishes_nothing(gen: TinyGen) -> None:
    n = 20
    fn = tiny_latents(n)

    def broken(frames):
        frames = list(frames)
        if frames[0] >= 10:
            raise RenderError("latents: broken on purpose")
        return fn(frames)

    w = RecordingSegmentWriter([(0, 10), (10, 20)])
    with pytest.raises(RenderError, match="broken on purpose"):
        render_latents(gen, broken, n, FPS, writer=w, batch=5, cpu_threads=1, jobs=1, progress=False)
    assert w.aborted and not w.finished
    assert [seg.start for seg, _ in w.committed] == [0]  # the segment handed over in full still commits


def test_a_failing_commit_stops_the_render(gen: TinyGen) -> None:
    w = RecordingSegmentWriter([(0, 6), (6, 12), (12, 18)], fail_commit=0)
    with pytest.raises(RenderError, match="commit failed"):
        render_latents(gen, tiny_latents(18), 18, FPS, writer=w, batch=3, cpu_threads=1, jobs=1, progress=False)
    assert w.aborted and not w.finished


def test_a_latent_error_before_the_first_segment_leaves_no_parts_folder(gen: TinyGen, tmp_path: Path) -> None:
    """Found by the issue-7 work: after a latent error, an empty ``.OUT.parts/`` holding only a manifest (and the
    folders made for the output) stayed behind."""
    out = tmp_path / "made" / "for" / "it" / "v.mkv"

    def broken(frames):
        raise RenderError("faces.a.latent: broken on purpose")

    with pytest.raises(RenderError, match="broken on purpose"):
        render_latents(gen, broken, 24, FPS, fingerprint="fp", batch=4, cpu_threads=1, progress=False,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=FPS, segment_seconds=0.5))
    assert list(tmp_path.iterdir()) == []


def test_a_latent_error_after_a_segment_keeps_it_for_resume(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "v.mkv"
    fn = tiny_latents(24)

    def broken(frames):
        frames = list(frames)
        if frames[0] >= 12:
            raise RenderError("broken on purpose")
        return fn(frames)

    with pytest.raises(RenderError, match="broken on purpose"):
        render_latents(gen, broken, 24, FPS, fingerprint="fp", batch=4, cpu_threads=1, jobs=1, progress=False,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=FPS, segment_seconds=0.5))
    parts = tmp_path / ".v.mkv.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["manifest.json", "seg_000000-000012.mkv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".v.mkv.parts"]
