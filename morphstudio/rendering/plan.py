"""Threads and batch size from measured stage costs: how the CPU's cores are split between torch and the encoders.

On a CPU the generator (torch's OpenMP team) and the ffmpeg encoders compete for the same cores, and which one
is the bottleneck depends on the model and the output: the built-in 64 px DCGAN at 512 px h264 is encoder-bound,
a 256 px StyleGAN2 is generator-bound with a nearly idle encoder. A fixed rule gets one of them wrong, so the
plan comes from measurements:

- **generator**: wall seconds per frame (synthesis + uint8 + resize to the output size) at a few torch thread
  counts and batch sizes (batch doubles while it still pays: it does for small models, not for large ones);
- **encoder**: CPU seconds per frame of one ffmpeg encoder for the render's codec, quality and size.

Both are cached per machine (CPU model, usable cores, torch version, host) and per model *architecture* (family,
constructor kwargs, parameter shapes: the weights' values do not change the cost), under
``$MORPHSTUDIO_CACHE/calibration`` (default ``~/.cache/morphstudio/calibration``), each with the time and the
1-minute load average it was measured at: ``--dry-run`` shows them, and a calibration taken on a machine busier
than its cores is flagged; ``render --recalibrate`` measures again. :func:`choose_plan` then
predicts the time per frame of every candidate from those figures alone (pure arithmetic, so tests feed it fake
timings) and takes the fastest, preferring the least CPU per frame on near-ties.

:func:`plan_render` puts it together with the frames, the output size and the segments into the
:class:`RenderPlan` a render follows and ``--dry-run`` prints.

Thread counts are always scoped (:func:`torch_threads`): nothing here leaves a process-wide
``torch.set_num_threads`` change behind.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from morphstudio.errors import RenderError
from morphstudio.formats import FOLDER_CODECS
from morphstudio.files import atomic_path

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI helpers below stay light
    import torch

    from morphstudio.generators.base import Generator
    from morphstudio.rendering.clock import FrameSelection
    from morphstudio.rendering.outputs import OutputSettings

CACHE_FORMAT = "morphstudio-calibration/1"
MAX_CPU_BATCH = 16
# Candidates within this fraction of the best predicted time count as ties; the tie goes to the one using the
# least CPU per frame (threads x seconds: it leaves the most to the encoders and to other load on a shared
# machine), then to fewer threads and the smaller batch.
TIE = 0.03
# Each measurement repeats its call until this much time has passed (at most MAX_REPS calls) and keeps the
# fastest: the figure least disturbed by other load.
MEASURE_SECONDS = 0.25
MAX_REPS = 3
# Batches stop doubling once one call takes this long: by then per-call overhead is long amortised, and the
# calibration of a large model stays a few seconds.
MAX_CALL_SECONDS = 1.0

GenCosts = dict[tuple[int, int], float]  # (threads, batch) -> wall seconds per frame

THREADS_HELP = "torch CPU threads (default: planned from measured generator and encoder costs; see --dry-run)"


# --- scoping ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads and restore the previous count afterwards (``None``: no
    change). Every thread change in morphstudio goes through here, so a render or projection returns the process
    as it found it."""
    if not n:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with numpy's and scipy's BLAS (OpenBLAS) limited to ``n`` threads, restored afterwards.

    For pipelines whose stages already run side by side on their own threads (live mode): each BLAS call there
    wakes OpenBLAS's worker threads, which then spin in ``sched_yield`` waiting for more work, on the cores the
    stages need (``perf`` on a live run: 40 % of the process's samples, halving its CPU time when limited).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def load_average() -> float | None:
    """The 1-minute load average (``None`` where the platform has none): what else was running while a
    calibration measured."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def wall_clock() -> float:
    """Seconds since the epoch (when a calibration was measured; a function so tests can fix it)."""
    return time.time()


def thread_candidates(cores: int) -> list[int]:
    """Torch thread counts worth measuring: 1, a quarter, half, all but one, all."""
    return sorted({1, max(1, cores // 4), max(1, cores // 2), max(1, cores - 1), cores})


# --- the arithmetic -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuPlan:
    """The threads and batch a CPU render (or projection) runs with, and why.

    Attributes:
        threads: Torch intra-op threads.
        batch: Frames per generator call.
        seconds_per_frame: Predicted wall time per frame (``None`` when nothing was measured).
        why: Lines for ``--dry-run``.
        source: ``measured`` (just calibrated), ``cached``, ``given`` (``--threads``/``--batch``) or ``recorded``
            (an interrupted render's manifest).
    """

    threads: int
    batch: int
    seconds_per_frame: float | None = None
    why: list[str] = field(default_factory=list)
    source: str = "measured"

    def record(self) -> dict[str, int]:
        """What the segment manifest keeps: the two settings that change a StyleGAN's floating-point sums."""
        return {"batch": self.batch, "threads": self.threads}


def predict(gen_seconds: float, enc_seconds: float | None, threads: int, cores: int) -> float:
    """Predicted wall seconds per frame when torch runs ``threads`` threads beside the encoders.

    Args:
        gen_seconds: Measured generator wall seconds per frame with ``threads`` threads.
        enc_seconds: Encoder CPU seconds per frame (``None`` or 0: no encoder).
        threads: Torch threads.
        cores: Usable cores.

    With cores left over, the encoders run there and the slower stage sets the pace:
    ``max(gen, enc / free_cores)``. With every core given to torch the encoders must pre-empt torch's threads,
    and a pre-empted OpenMP thread stalls its whole team at the next barrier, so the encoder's CPU time adds to
    the generator's in full: ``gen + enc``. That is why a busy encoder gets a core of its own and an idle one
    does not.
    """
    if not enc_seconds:
        return gen_seconds
    free = cores - threads
    if free >= 1:
        return max(gen_seconds, enc_seconds / free)
    return gen_seconds + enc_seconds


def choose_plan(gen_costs: GenCosts, enc_seconds: float | None, cores: int, *, threads: int | None = None,
                batch: int | None = None, max_batch: int | None = None) -> CpuPlan:
    """The fastest predicted (threads, batch) among the measured ones (pure arithmetic on the figures given).

    Args:
        gen_costs: ``(threads, batch) -> generator wall seconds per frame``.
        enc_seconds: Encoder CPU seconds per frame, ``None`` when nothing is encoded.
        cores: Usable cores.
        threads: A thread count fixed by the user (the batch is then chosen for the nearest measured count).
        batch: A batch size fixed by the user.
        max_batch: Largest batch worth using (the frames to render).

    Returns:
        The plan with its reasons.
    """
    if not gen_costs:
        raise RenderError("internal: no generator measurements to plan from")
    measured_threads = sorted({t for t, _ in gen_costs})
    near_t = min(measured_threads, key=lambda t: (abs(t - threads), t)) if threads else None
    options: list[tuple[float, int, int, float]] = []  # (predicted, threads, batch, gen)
    for (t, b), g in gen_costs.items():
        if near_t is not None and t != near_t:
            continue
        if batch is not None and b != min((bb for tt, bb in gen_costs if tt == t), key=lambda bb: abs(bb - batch)):
            continue
        if max_batch is not None and b > max(1, max_batch) and b != 1:
            continue
        run_t = threads or t
        options.append((predict(g, enc_seconds, run_t, cores), run_t, batch or b, g))
    best = min(p for p, *_ in options)
    pick = min((o for o in options if o[0] <= best * (1 + TIE)), key=lambda o: (o[1] * o[3], o[1], o[2]))
    p, t, b, g = pick
    why = [_cost_table(gen_costs)]
    if enc_seconds:
        why.append(f"encoder:   {enc_seconds * 1000:.1f} ms CPU per frame")
        free = cores - t
        enc_rate = enc_seconds / free if free >= 1 else None
        if enc_rate is not None and enc_rate >= g:
            why.append(f"-> encoder-bound: torch gets {t} of {cores} core(s), leaving {free} to the encoder "
                       f"(it needs {enc_seconds / max(g, 1e-9):.1f} core(s) to keep up)")
        elif free >= 1:
            why.append(f"-> generator-bound: torch gets {t} of {cores} core(s); the encoder's "
                       f"{enc_seconds * 1000:.1f} ms per frame fits on the other {free}")
        else:
            why.append(f"-> generator-bound: torch gets all {cores} core(s); the encoder needs only "
                       f"{enc_seconds / max(g, 1e-9):.2f} of a core and runs in the gaps")
    else:
        why.append(f"-> nothing to encode: torch gets {t} of {cores} core(s)")
    why.append(f"   predicted {p * 1000:.1f} ms per frame ({1 / p:.1f} frames/s) with {t} thread(s), batch {b}")
    return CpuPlan(t, b, p, why)


def _cost_table(gen_costs: GenCosts) -> str:
    by_t: dict[int, list[str]] = {}
    for (t, b), g in sorted(gen_costs.items()):
        by_t.setdefault(t, []).append(f"b{b} {g * 1000:.1f}")
    return "generator: ms per frame " + "; ".join(f"{t} thread(s): {', '.join(v)}" for t, v in by_t.items())


# --- the cache ----------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$MORPHSTUDIO_CACHE/calibration`` if set, else ``~/.cache/morphstudio/calibration``."""
    env = os.environ.get("MORPHSTUDIO_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "morphstudio"
    return root / "calibration"


def machine_description() -> dict[str, Any]:
    """What makes timings from one machine invalid on another."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"host": platform.node(), "cpu": cpu, "cores": usable_cores(), "torch": torch.__version__,
            "python": platform.python_version()}


def machine_key(desc: dict[str, Any] | None = None) -> str:
    """Short hash of :func:`machine_description` (the calibration file's name)."""
    desc = desc if desc is not None else machine_description()
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def model_key(generator: Any) -> str:
    """Hash of a generator's architecture: family, constructor kwargs, and every parameter's name, shape and dtype.

    Two checkpoints of the same architecture cost the same per frame, so they share a calibration; a different
    size, width or precision does not.
    """
    h = hashlib.sha256()
    h.update(str(getattr(generator, "family", type(generator).__name__)).encode())
    h.update(json.dumps(getattr(generator, "init_kwargs", {}), sort_keys=True, default=str).encode())
    for name, t in sorted(generator.state_dict().items()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
    return h.hexdigest()[:16]


class CalibrationCache:
    """Measured costs for one machine, in ``cache_dir()/<machine key>.json``.

    Entries are keyed by what was measured (model key, precision, output size; codec, quality, size); beside
    each, ``measured`` keeps when (``at``, epoch seconds) and under what 1-minute load average (``load``) it
    was measured. A file written for another machine description, another format, or one that cannot be read
    is ignored and replaced: the figures are re-measured, never trusted blindly.
    """

    def __init__(self, folder: Path | None = None, machine: dict[str, Any] | None = None) -> None:
        self.machine = machine if machine is not None else machine_description()
        self.path = (folder or cache_dir()) / f"{machine_key(self.machine)}.json"
        self.entries: dict[str, Any] = {}
        self.measured: dict[str, Any] = {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and data.get("machine") == self.machine:
            self.entries = dict(data.get("entries") or {})
            measured = data.get("measured")
            self.measured = dict(measured) if isinstance(measured, dict) else {}

    def get(self, key: str) -> Any:
        return self.entries.get(key)

    def when(self, key: str) -> tuple[float | None, float | None]:
        """``(at, load)`` of an entry's measurement: epoch seconds and the 1-minute load average (``None`` when
        unknown: a file written before they were recorded, or a platform without a load average)."""
        meta = self.measured.get(key)
        if not isinstance(meta, dict):
            return None, None

        def number(v: Any) -> float | None:
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        return number(meta.get("at")), number(meta.get("load"))

    def put(self, key: str, value: Any, load: float | None = None) -> None:
        """Store ``value`` for ``key`` with the time and ``load`` (the load average taken before measuring;
        default: now) and write the file (an unwritable cache only costs a re-measurement next time)."""
        self.entries[key] = value
        self.measured[key] = {"at": wall_clock(), "load": load if load is not None else load_average()}
        data = {"format": CACHE_FORMAT, "machine": self.machine, "entries": self.entries,
                "measured": self.measured}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True))
        except OSError:
            pass  # an unwritable cache only costs a re-measurement next time


def _costs_to_json(costs: GenCosts) -> dict[str, float]:
    return {f"{t}x{b}": s for (t, b), s in costs.items()}


def _costs_from_json(data: Any) -> GenCosts | None:
    try:
        out = {(int(k.split("x")[0]), int(k.split("x")[1])): float(v) for k, v in data.items()}
    except (AttributeError, ValueError, IndexError, TypeError):
        return None
    return out if out and all(v > 0 for v in out.values()) else None


# --- measuring ----------------------------------------------------------------------------------------------------


def _time_call(fn: Callable[[], Any], warm_up: bool = True, clock: Callable[[], float] = time.perf_counter) -> float:
    """Fastest of up to MAX_REPS calls within about MEASURE_SECONDS (after one warm-up call if asked)."""
    if warm_up:
        fn()
    best = float("inf")
    spent = 0.0
    for _ in range(MAX_REPS):
        t = clock()
        fn()
        dt = clock() - t
        best = min(best, dt)
        spent += dt
        if spent >= MEASURE_SECONDS:
            break
    return best


def _calibration_latents(generator: Any, n: int) -> np.ndarray:
    """``n`` latents along a short seeded walk around w_avg (smooth motion, like a real render)."""
    w_avg = generator.w_avg.detach().float().cpu().numpy().reshape(-1)
    rs = np.random.RandomState(0)
    a, b = rs.randn(2, w_avg.shape[0]).astype(np.float32) * 0.7
    t = np.linspace(0, np.pi / 2, max(n, 1), dtype=np.float32)[:, None]
    w = w_avg + np.cos(t) * a + np.sin(t) * b
    return np.repeat(w[:, None], generator.num_ws, 1).astype(np.float32)


def measure_generator(generator: Any, width: int, height: int, fit: str, precision: torch.dtype,
                      threads: Sequence[int], max_batch: int) -> GenCosts:
    """Generator wall seconds per frame at each thread count, batch 1 then doubling while it pays (>= 5 %)."""
    from morphstudio.rendering.batcher import Batcher

    costs: GenCosts = {}
    ws_all = _calibration_latents(generator, max_batch)
    with Batcher(generator, width, height, fit, precision) as b:
        for t in threads:
            with torch_threads(t):
                bs = 1
                best = float("inf")
                while bs <= max_batch:
                    ws = ws_all[:bs]
                    idx = list(range(bs))
                    # Warm-up once per thread count (thread pool, allocator); larger batches reuse it.
                    per_frame = _time_call(lambda: b.submit(ws, idx).result(), warm_up=bs == 1) / bs
                    costs[(t, bs)] = per_frame
                    if per_frame > best * 0.95 or per_frame * bs > MAX_CALL_SECONDS:
                        break
                    best = min(best, per_frame)
                    bs *= 2
    return costs


def measure_encoder(frames: np.ndarray, codec: str, crf: int | None, fps: float, ext: str) -> float:
    """CPU seconds per frame of one ffmpeg encoder (the render's codec arguments) on ``frames`` (uint8 NHWC).

    Two encodes of different lengths, so ffmpeg's start-up cost cancels out; the CPU time is the child's own
    (``os.wait4``), so other load on the machine does not count.
    """
    if codec in FOLDER_CODECS:
        import cv2

        t = time.process_time()
        for f in frames:
            cv2.imencode(".png", f)
        return max(1e-6, (time.process_time() - t) / len(frames))
    from morphstudio.sinks.ffmpeg import codec_args, ffmpeg_exe, fps_arg

    h, w = frames.shape[1:3]
    ping_pong = np.concatenate([frames, frames[::-1]])

    def cpu_for(n: int, folder: str) -> float:
        out = Path(folder) / f"cal{n}{ext or '.mp4'}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-framerate", fps_arg(fps), "-i", "pipe:0", *codec_args(codec, crf), str(out)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        try:
            for i in range(n):
                proc.stdin.write(ping_pong[i % len(ping_pong)].tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RenderError(f"calibration: ffmpeg could not encode {codec} at {w}x{h} (exit {proc.returncode})")
        return usage.ru_utime + usage.ru_stime

    with tempfile.TemporaryDirectory(prefix="morphstudio-cal-") as d:
        short, long = 8, 8 + 2 * len(ping_pong)
        c1, c2 = cpu_for(short, d), cpu_for(long, d)
    return max(1e-6, (c2 - c1) / (long - short))


# --- planning a render ----------------------------------------------------------------------------------------------


def plan_cpu_render(generator: Any, width: int, height: int, fit: str, precision: torch.dtype, *, codec: str | None,
                    crf: int | None, fps: float, ext: str, frames: int, threads: int | None = None,
                    batch: int | None = None, cache: CalibrationCache | None = None,
                    recalibrate: bool = False) -> CpuPlan:
    """Threads and batch for a CPU render, from cached or fresh measurements (``threads`` and ``batch``, when
    given, are kept as they are).

    Args:
        generator: The generator (on the CPU).
        width: Output width.
        height: Output height.
        fit: Resize mode.
        precision: Compute dtype.
        codec: The encoder's codec; ``None`` when no file is written.
        crf: Its quality.
        fps: Frames per second.
        ext: The output's extension (the container the encoder writes).
        frames: Frames to render (no batch larger than this).
        threads: ``--threads``.
        batch: ``--batch``.
        cache: Where measurements are kept (default: this machine's file in :func:`cache_dir`).
        recalibrate: Measure again even what the cache has (``render --recalibrate``), and keep the new figures.
    """
    if threads is not None and batch is not None:
        return CpuPlan(threads, batch, None, [f"given: {threads} torch thread(s), batch {batch}"], "given")
    cores = usable_cores()
    cache = cache or CalibrationCache()
    max_b = int(max(1, min(MAX_CPU_BATCH, frames)))
    gkey = f"gen:{model_key(generator)}:{precision}:{width}x{height}:{fit}:max{max_b}"
    # Taken before measuring, so it shows the other load on the machine rather than the measurement's own.
    load = load_average()
    cached = None if recalibrate else _costs_from_json(cache.get(gkey))
    source = "cached"
    stages = [("generator", gkey, cached is None)]  # (stage, cache key, measured now)
    if cached is None:
        source = "measured"
        cands = [threads] if threads else thread_candidates(cores)
        cached = measure_generator(generator, width, height, fit, precision, cands, max_b)
        if threads is None:
            cache.put(gkey, _costs_to_json(cached), load)
    enc = None
    if codec is not None:
        ekey = f"enc:{codec}:{crf}:{width}x{height}:{ext}"
        enc = None if recalibrate else cache.get(ekey)
        fresh = not isinstance(enc, (int, float)) or enc <= 0
        if fresh:
            from morphstudio.rendering.batcher import Batcher

            ws = _calibration_latents(generator, 8)
            with Batcher(generator, width, height, fit, precision) as b:
                sample = b.submit(ws, list(range(len(ws)))).result()
            enc = measure_encoder(sample, codec, crf, fps, ext)
            cache.put(ekey, enc, load)
            source = "measured"
        stages.append(("encoder", ekey, fresh))
    plan = choose_plan(cached, enc, cores, threads=threads, batch=batch, max_batch=max_b)
    notes = calibration_notes(cache, stages, cores, load)
    return CpuPlan(plan.threads, plan.batch, plan.seconds_per_frame, [*plan.why, *notes],
                   "given" if (threads or batch) else source)


def calibration_notes(cache: CalibrationCache, stages: Sequence[tuple[str, str, bool]], cores: int,
                      load_now: float | None) -> list[str]:
    """``--dry-run``'s lines on where the figures came from: measured now or cached (when, and under what
    1-minute load average), the cache file, and a suggestion to ``--recalibrate`` when a figure was measured
    under a load above the cores (other work slowed the measurement, so the plan follows figures that are off).

    Args:
        cache: The calibration cache.
        stages: ``(stage, cache key, measured now)`` for each figure the plan used.
        cores: Usable cores.
        load_now: The load average taken before this run's measurements.
    """
    parts: list[str] = []
    busy: list[float] = []
    for stage, key, fresh in stages:
        at, load = (wall_clock(), load_now) if fresh else cache.when(key)
        how = f" (load {load:.1f})" if load is not None else ""
        if fresh:
            parts.append(f"{stage} measured now{how}")
        elif at is None:
            parts.append(f"{stage} cached, measured at an unknown time and load")
        else:
            parts.append(f"{stage} cached, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))}{how}")
        if load is not None and load > cores:
            busy.append(load)
    lines = [f"calibration: {'; '.join(parts)}; {cores} core(s) ({cache.path})"]
    if busy:
        lines.append(f"   measured under load {max(busy):.1f} > {cores} core(s): other work slowed the measurement, "
                     "so the plan may be off; --recalibrate measures again (best on a quieter machine)")
    return lines


# --- projection and encoder training ------------------------------------------------------------------------------


def measure_training_step(generator: Any, batch: int, threads: Sequence[int]) -> dict[int, float]:
    """Seconds of one generator forward + backward pass at ``batch`` for each thread count (what a projection
    or encoder-training step is made of)."""
    import torch

    costs: dict[int, float] = {}
    ws0 = torch.from_numpy(_calibration_latents(generator, batch)).to(generator.device)
    for t in threads:
        with torch_threads(t):
            def step() -> None:
                ws = ws0.clone().requires_grad_(True)
                img = generator.synthesis(ws, noise_mode="const")
                img.float().square().mean().backward()

            costs[t] = _time_call(step)
    return costs


def plan_torch_threads(generator: Any, batch: int = 1, threads: int | None = None,
                       cache: CalibrationCache | None = None, load: float | None = None) -> tuple[int | None, str]:
    """Torch threads for a projection or encoder training (no encoder stage: torch alone), and why.

    On a busy machine every extra OpenMP thread competes with other processes and stalls its team (a user saw a
    projection take 32-36 s with default threads and 5.6-6.1 s with one), so the candidates are limited to the
    cores the 1-minute load average leaves free; among the measured ones the fastest wins, ties going to fewer.

    Returns:
        ``(threads, reason)``; threads is ``None`` on a GPU (torch's CPU threads do not matter there).
    """
    if threads is not None:
        return threads, f"{threads} torch thread(s) (given)"
    if generator.device.type != "cpu":
        return None, f"on {generator.device}: CPU threads left as they are"
    cores = usable_cores()
    if load is None:
        load = load_average() or 0.0
    free = max(1, min(cores, cores - int(load)))
    cache = cache or CalibrationCache()
    key = f"train:{model_key(generator)}:b{batch}"
    got = cache.get(key)
    costs: dict[int, float] = {}
    if isinstance(got, dict):
        with contextlib.suppress(ValueError, TypeError):
            costs = {int(k): float(v) for k, v in got.items()}
    if not costs:
        costs = measure_training_step(generator, batch, thread_candidates(cores))
        cache.put(key, {str(k): v for k, v in costs.items()}, load)
    usable = {t: s for t, s in costs.items() if t <= free} or {min(costs): costs[min(costs)]}
    best = min(usable.values())
    pick = min(t for t, s in usable.items() if s <= best * (1 + TIE))
    table = ", ".join(f"{t}: {s * 1000:.0f} ms" for t, s in sorted(costs.items()))
    return pick, (f"{pick} torch thread(s): step {table}; load {load:.1f} leaves {free} of {cores} core(s)")


# --- command-line helpers -------------------------------------------------------------------------------------------


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    """``--threads N`` on ``render`` and ``preview`` (their shared options), ``project`` and ``encoder train``."""
    p.add_argument("--threads", metavar="N", default=None, help=THREADS_HELP)


def parse_threads(value: Any) -> int | None:
    """``--threads`` as a whole number of at least 1 (``None`` = planned).

    Raises:
        RenderError: Not a whole number, or below 1.
    """
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise RenderError(f"--threads: expected a whole number, got {value!r}") from None
    if n < 1:
        raise RenderError(f"--threads: must be at least 1, got {n}")
    return n


# --- the whole render's plan ----------------------------------------------------------------------------------------


@dataclass
class RenderPlan:
    """Everything decided before the first frame: shown by ``--dry-run``.

    Attributes:
        frames: The frame indices to render.
        fps: Frames per second.
        width: Output width.
        height: Output height.
        batch: Frames per generator call.
        precision: Compute dtype.
        device: Where the generator runs.
        output: Output settings (path ``None`` = no file).
        segments: Encoded segments (empty for gif/png/no file).
        jobs: Encoders running at once.
        cpu_threads: Torch CPU threads (CPU rendering only).
        encoder_threads: ffmpeg threads per segment encoder when several run at once (``None`` = ffmpeg decides).
        why: How threads and batch were chosen, for ``--dry-run``.
    """

    frames: range
    fps: float
    width: int
    height: int
    batch: int
    precision: torch.dtype
    device: torch.device
    output: OutputSettings
    segments: list[tuple[int, int]] = field(default_factory=list)
    jobs: int = 1
    cpu_threads: int | None = None
    encoder_threads: int | None = None
    why: list[str] = field(default_factory=list)

    def record(self) -> dict[str, int | None]:
        """What the segment manifest keeps so ``--resume`` renders the rest identically."""
        return {"batch": self.batch, "threads": self.cpu_threads}

    def describe(self) -> list[str]:
        """Human-readable lines."""
        from morphstudio.rendering.clock import segment_length

        n = len(self.frames)
        lines = [
            (f"frames:    {self.frames.start}..{self.frames.stop - 1} ({n} frames, {n / self.fps:.2f} s at "
             f"{self.fps:g} fps)"),
            f"size:      {self.width}x{self.height} ({self.output.fit})",
            (f"device:    {self.device} ({str(self.precision).replace('torch.', '')}), batch {self.batch} "
             f"-> {-(-n // self.batch)} batches"
             + (f", {self.cpu_threads} torch thread(s)" if self.cpu_threads else "")),
        ]
        lines += [f"plan:      {line}" for line in self.why]
        if self.output.path is None:
            lines.append("output:    none (preview / sinks only)")
        else:
            lines.append(f"output:    {self.output.path} ({self.output.codec}"
                         + (f", crf {self.output.crf}" if self.output.crf is not None else "")
                         + (f", audio {self.output.audio}" if self.output.audio else "") + ")")
        if self.segments:
            lines.append(f"segments:  {len(self.segments)} of up to {segment_length(self.output.segment_seconds, self.fps)}"
                         f" frames, {self.jobs} encoder(s) at once"
                         + (f" ({self.encoder_threads} thread(s) each)" if self.encoder_threads else "")
                         + ", joined losslessly")
        return lines


def default_jobs() -> int:
    """Encoders at once: half the usable cores (the other half generate), at least 1."""
    return max(1, usable_cores() // 2)


def plan_render(
    generator: Generator,
    frame_count: int,
    fps: float,
    output: OutputSettings | None,
    *,
    frames: FrameSelection = None,
    batch: int | None = None,
    precision: str | torch.dtype | None = None,
    jobs: int | None = None,
    cpu_threads: int | None = None,
    recalibrate: bool = False,
) -> RenderPlan:
    """Decide frames, size, batch size, segments and threads (validating everything a user can get wrong).

    ``recalibrate`` measures a CPU render's stage costs again even when they are cached.

    Raises:
        RenderError: Bad frame range, batch size, size, codec/container combination.
        DeviceError: A precision the device does not support.
    """
    from morphstudio.devices import resolve_dtype
    from morphstudio.rendering.batcher import auto_batch_size, output_size
    from morphstudio.rendering.clock import parse_frame_range, plan_segments, segment_length
    from morphstudio.rendering.outputs import OutputSettings
    from morphstudio.sinks.segmented import check_encodable, whole_file_codec

    out = output if output is not None else OutputSettings(path=None)
    rng = parse_frame_range(frames, frame_count)
    width, height = output_size(out.size, generator.resolution)
    device = generator.device
    dtype = resolve_dtype(precision, device)
    if out.path is not None:
        check_encodable(out.codec, out.path, width, height, out.crf, out.audio)
    if batch is not None and batch < 1:
        raise RenderError(f"--batch must be at least 1, got {batch}")
    if jobs is not None and jobs < 1:
        raise RenderError(f"--jobs must be at least 1, got {jobs}")
    if cpu_threads is not None and cpu_threads < 1:
        raise RenderError(f"--threads must be at least 1, got {cpu_threads}")
    if fps <= 0:
        raise RenderError(f"output.fps must be positive, got {fps}")
    segmented = out.path is not None and not whole_file_codec(out.codec)
    segs = plan_segments(rng, segment_length(out.segment_seconds, fps)) if segmented else []
    n_jobs = jobs if jobs is not None else default_jobs()
    n_jobs = max(1, min(n_jobs, len(segs) or 1))
    threads = None
    why: list[str] = []
    if device.type == "cpu":
        # Threads and batch from measured generator and encoder costs (cached per machine and model).
        cpu = plan_cpu_render(generator, width, height, out.fit, dtype,
                              codec=out.codec if out.path is not None else None, crf=out.crf, fps=fps,
                              ext=Path(out.path).suffix.lower() if out.path is not None else "",
                              frames=min(len(rng), auto_batch_size(generator, width, height, dtype)),
                              threads=cpu_threads, batch=batch, recalibrate=recalibrate)
        bs, threads, why = cpu.batch, cpu.threads, cpu.why
    else:
        bs = batch if batch is not None else auto_batch_size(generator, width, height, dtype)
    bs = max(1, min(bs, len(rng)))
    # Several encoders at once share the cores; a single one is left to ffmpeg's own choice.
    encoder_threads = max(1, usable_cores() // n_jobs) if n_jobs > 1 else None
    return RenderPlan(rng, fps, width, height, bs, dtype, device, out, segs, n_jobs, threads, encoder_threads, why)
