"""Segments on Ray actors: each actor loads the model once and renders whole segments.

Network confinement. A Ray instance started for a job must not be reachable from, nor talk to, anything but
this machine. Ray 2.60 on Linux registers its node on the machine's external interface even when
``ray.init(_node_ip_address="127.0.0.1")`` is given (it "resolves" loopback to a reachable address), and its gRPC
servers then listen on every interface. What confines it is Ray's non-cluster mode
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the mode Ray uses by default on macOS and Windows): the node's address
stays 127.0.0.1 and every server binds there. With it, ``ss -tnlp`` shows Ray's GCS, raylet, workers, driver
and agents listening on 127.0.0.1 only and every connection between them is loopback (checked by the tests).
The dashboard is off, usage statistics are off, token authentication is on with a random token made for the job
(passed in the environment, so nothing is written to ``~/.ray``), and the session folder is a temporary folder
removed at the end.

On an existing cluster (``address`` given) morphstudio connects as a driver and changes none of that cluster's
settings; its own authentication (``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``) is the user's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from morphstudio.distributed.executor import Executor
from morphstudio.distributed.job import SegmentJob, SegmentRenderer, SegmentResult, WorkerSpec
from morphstudio.errors import RenderError
from morphstudio.sinks.lock import pid_alive

INSTALL_HINT = "--ray: Ray is not installed; install it with: pip install 'morphstudio[ray]' (or pip install 'ray>=2.40')"
# A worker that dies has its segments retried on a restarted worker (Ray's own actor restarts and task
# retries, no heartbeat of ours); one that keeps dying ends the render with the finished segments kept.
MAX_RESTARTS = 3
MAX_TEMP_DIR = 45
IN_FLIGHT = 2  # jobs queued per actor, so it starts the next segment while the driver commits the last one


def import_ray() -> Any:
    """``import ray``, or the one-line install hint.

    Raises:
        RenderError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise RenderError(INSTALL_HINT) from None
    return ray


def loopback_env(token: str) -> dict[str, str]:
    """The environment a job's own Ray instance (and every process it starts) runs with."""
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # non-cluster mode: node address and servers on 127.0.0.1
        "RAY_NODE_IP_ADDRESS": "127.0.0.1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,  # explicit, so Ray neither reads nor writes ~/.ray/auth_token
        "RAY_DISABLE_IMPORT_WARNING": "1",
    }


@contextlib.contextmanager
def _scoped_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block and restore them after: Ray reads them in this process and
    passes them to the processes it starts, and a render must leave the caller's environment as it was."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


TEMP_PREFIX = "msray-"
OWNER_FILE = "morphstudio-owner"  # "HOST PID" of the driver that made the folder


def _sweep_stale_temp(tmp: Path) -> list[Path]:
    """Remove the Ray temp folders of drivers on this host that died without cleaning up (killed, power cut).

    A folder is stale when its owner file names this host and a process id that no longer runs; folders of
    other hosts, of live drivers, or without an owner file are left alone. Returns what was removed.
    """
    removed = []
    host = socket.gethostname()
    for folder in tmp.glob(f"{TEMP_PREFIX}*"):
        try:
            owner_host, pid_text = (folder / OWNER_FILE).read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if owner_host != host or pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


class RayExecutor(Executor):
    """Renders segments on Ray actors.

    Args:
        address: An existing cluster (``HOST:PORT`` or ``ray://...``); ``None`` starts a local instance for the
            job, confined to 127.0.0.1, and stops it at the end.
        workers: Actors (default: one per GPU when the cluster has GPUs, else one per CPU core's worth of
            ``threads``).
        threads: Torch CPU threads per actor (the render plan's), used to size CPU actors.
        temp_dir: Root of the local instance's session folder (default: a new temporary folder, removed at the
            end; keep it short: Ray's socket paths live under it).
        on_ready: Called once every actor has loaded the model (tests check the network there).
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None, threads: int | None = None,
                 temp_dir: str | Path | None = None, on_ready: Callable[[RayExecutor], None] | None = None) -> None:
        if workers is not None and workers < 1:
            raise RenderError(f"--workers must be at least 1, got {workers}")
        self.address = address
        self.requested = workers
        self.threads = threads
        # The driver plans each worker's torch threads from this count before the workers start, so a local
        # instance's default is settled now (a cluster's once connected): one worker per GPU, else per core's
        # share of ``threads``.
        self.workers = workers or (self._default_workers(_cores(), _cuda_count()) if address is None else 1)
        self.temp_dir = Path(temp_dir) if temp_dir is not None else None
        self.on_ready = on_ready
        self.session_root: Path | None = None  # the local instance's temp folder
        self.worker_ids: list[str] = []
        self.shared: list[bool] = []
        self._ray: Any = None
        self._actors: list[Any] = []
        self._started_local = False
        self._made_temp: Path | None = None
        self._env: contextlib.ExitStack | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self, spec: WorkerSpec) -> RayExecutor:
        ray = import_ray()
        self._ray = ray
        self._env = contextlib.ExitStack()
        try:
            self._init(ray)
            self._make_actors(ray, spec)
        except BaseException:
            self.close()
            raise
        if self.on_ready is not None:
            self.on_ready(self)
        return self

    def _init(self, ray: Any) -> None:
        assert self._env is not None
        if ray.is_initialized():
            raise RenderError("--ray: this process is already connected to a Ray cluster; morphstudio starts or "
                              "joins its own (call ray.shutdown() first)")
        # Workers import morphstudio from where this driver does (a checkout, not only an installed copy).
        path = os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH", "")) if p)
        if self.address is None:
            env = loopback_env(secrets.token_hex(32))
            env["PYTHONPATH"] = path
            self._env.enter_context(_scoped_env(env))
            # Ray reads this one flag when it is first imported; a process that imported Ray before this call
            # gets it set for the job's duration too.
            from ray._private import ray_constants

            self._env.enter_context(_scoped_attr(ray_constants, "ENABLE_RAY_CLUSTER", False))
            # Ray caches its config (the auth mode) and the token in this process: read them again now, and
            # again when the job's environment is restored.
            self._env.callback(_reload_ray_config)
            _reload_ray_config()
            if self.temp_dir is None:
                _sweep_stale_temp(Path(tempfile.gettempdir()))
                self._made_temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
                (self._made_temp / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
                root = self._made_temp
            else:
                root = self.temp_dir.resolve()
                # Ray's sockets live under ROOT/session_<date>_<pid>/sockets/ (62 more bytes) and a Unix socket
                # path is at most 107 bytes.
                if len(str(root).encode()) > MAX_TEMP_DIR:
                    raise RenderError(f"--ray: the Ray temp folder {root} is too long for Ray's socket paths "
                                      f"(at most {MAX_TEMP_DIR} bytes)")
                root.mkdir(parents=True, exist_ok=True)
            self.session_root = root
            cores = _cores()
            gpus = _cuda_count()
            if self.requested is None:
                self.workers = self._default_workers(cores, gpus)
            ray.init(address="local", num_cpus=max(cores, self.workers), num_gpus=gpus,
                     include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=str(root),
                     log_to_driver=False, logging_level="WARNING", configure_logging=False)
            self._started_local = True
        else:
            self._env.enter_context(_scoped_env({"RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}))
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="WARNING",
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RenderError(f"--ray {self.address}: cannot connect to the Ray cluster: "
                                  f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            res = ray.cluster_resources()
            gpus = int(res.get("GPU", 0))
            if self.requested is None:
                self.workers = self._default_workers(int(res.get("CPU", 1)), gpus)

    def _default_workers(self, cpus: int, gpus: int) -> int:
        return gpus or max(1, cpus // max(1, self.threads or 1))

    def _make_actors(self, ray: Any, spec: WorkerSpec) -> None:
        res = ray.cluster_resources()
        gpus = float(res.get("GPU", 0))
        options: dict[str, Any] = {"max_restarts": MAX_RESTARTS, "max_task_retries": MAX_RESTARTS}
        if gpus > 0 and spec.device != "cpu":
            # One GPU each, or an equal share when there are more workers than GPUs (a model per actor).
            options["num_gpus"] = 1 if gpus >= self.workers else gpus / self.workers
            options["num_cpus"] = 1
        else:
            cpus = float(res.get("CPU", 1))
            options["num_cpus"] = min(max(1, self.threads or 1), max(1.0, cpus / self.workers))
        actor_cls = ray.remote(_SegmentActor).options(**options)
        self._actors = [actor_cls.remote(spec) for _ in range(self.workers)]
        try:
            info = ray.get([a.ready.remote() for a in self._actors])
        except ray.exceptions.RayActorError as exc:
            raise RenderError(f"--ray: a worker could not start: {_first_line(exc)}") from None
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        self.worker_ids = [i for i, _ in info]
        self.shared = [s for _, s in info]

    def close(self) -> None:
        ray, self._ray = self._ray, None
        if ray is not None and ray.is_initialized():
            for a in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(a, no_restart=True)
            ray.shutdown()
        self._actors = []
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._made_temp is not None:
            shutil.rmtree(self._made_temp, ignore_errors=True)
            self._made_temp = None

    # --- work --------------------------------------------------------------------------------------------------

    def results(self, jobs: Iterable[SegmentJob]) -> Iterator[tuple[SegmentJob, SegmentResult]]:
        ray = self._ray
        if ray is None:
            raise RuntimeError("RayExecutor.results() before start()")
        todo = iter(jobs)
        inflight: dict[Any, tuple[Any, SegmentJob]] = {}

        def feed(actor: Any) -> None:
            job = next(todo, None)
            if job is not None:
                inflight[actor.render.remote(job)] = (actor, job)

        for _ in range(IN_FLIGHT):
            for actor in self._actors:
                feed(actor)
        while inflight:
            done, _ = ray.wait(list(inflight), num_returns=1)
            actor, job = inflight.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            except ray.exceptions.RayActorError as exc:
                raise RenderError(f"--ray: the worker rendering segment {job.start}..{job.stop - 1} died "
                                  f"{MAX_RESTARTS + 1} times ({_first_line(exc)}); finished segments are kept: "
                                  "--resume continues") from None
            feed(actor)
            yield job, result

    def describe(self) -> str:
        where = "a local Ray instance on 127.0.0.1" if self.address is None else f"the Ray cluster at {self.address}"
        return f"{self.workers} Ray worker(s) on {where}"


class _SegmentActor:
    """The actor class (wrapped with ``ray.remote`` at start, so importing this module needs no Ray)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.renderer = SegmentRenderer(spec)

    def ready(self) -> tuple[str, bool]:
        from morphstudio.distributed.job import worker_id

        return worker_id(), self.renderer.shared

    def render(self, job: SegmentJob) -> SegmentResult:
        return self.renderer.render(job)


@contextlib.contextmanager
def _scoped_attr(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _reload_ray_config() -> None:
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _cores() -> int:
    from morphstudio.rendering.plan import usable_cores

    return usable_cores()


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause(exc: Any) -> BaseException:
    """A worker's exception as itself (a morphstudio error keeps its one-line message)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    return RenderError(f"--ray: a worker failed: {_first_line(exc)}")
