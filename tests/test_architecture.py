"""The package's shape: no import circles, a torch-free scene/timeline, and no process-wide side effects at import.

The import graph is read from the source with ``ast``, so it sees every import a module can run: module-level ones,
those inside functions (the lazy imports that keep ``import morphstudio`` quick) and those under
``if TYPE_CHECKING:`` (a circle there is still two modules that each need the other). An edge goes to the module
an import names: ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b`` (whose
``__init__`` must then provide ``c``). The implicit import of a module's parent packages is not an edge: every
submodule would otherwise form a circle with the ``__init__`` that re-exports it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "morphstudio"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, mods: dict[str, Path]) -> list[str]:
    """The morphstudio modules one import statement names."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in mods:  # `import a.b.c` where c is a name, not a module
                name = name.rpartition(".")[0]
            if name:
                out.append(name)
        return out
    if node.level:  # relative: from the module's package, one level up per extra dot
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    for alias in node.names:
        if f"{source}.{alias.name}" in mods:
            out.append(f"{source}.{alias.name}")
        elif source in mods:
            out.append(source)
    return out


def import_graph() -> dict[str, set[str]]:
    """``module -> modules it imports`` over morphstudio/, from the source."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(t for t in _targets(node, name, path.name == "__init__.py", mods) if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or ``None`` when the graph has none (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    # The real graph has no circle, so this is what shows the finder would report one (and which one).
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    graph = import_graph()
    # Function-level imports are edges: the CLI builds its parser from command modules lazily, and
    # morphstudio/__init__ reaches api only inside functions.
    assert "morphstudio.api" in graph["morphstudio"]
    assert "morphstudio.generators.checkpoints" in graph["morphstudio.generators.loading"]
    mods = {"p": Path("p/__init__.py"), "p.a": Path("p/a.py"), "p.b": Path("p/b.py")}
    rel = ast.parse("from . import b\nfrom .b import x\n").body
    assert _targets(rel[0], "p.a", False, mods) == ["p.b"] and _targets(rel[1], "p.a", False, mods) == ["p.b"]


def test_no_import_circles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_commands_share_scene_arguments_without_importing_each_other() -> None:
    graph = import_graph()
    commands = {m for m in graph if m.startswith("morphstudio.commands.")}
    shared = {"morphstudio.commands.scene_args", "morphstudio.commands.watch", "morphstudio.commands.native_logs"}
    for module in sorted(commands - shared):
        others = graph[module] & (commands - shared)
        assert not others, f"{module} imports the command module(s) {sorted(others)}; share code through " \
                           "scene_args / watch instead"


def test_checkpoint_readers_do_not_import_the_loader() -> None:
    graph = import_graph()
    readers = [m for m in graph if m.startswith("morphstudio.generators.checkpoints")]
    assert readers
    for module in readers:
        assert "morphstudio.generators.loading" not in graph[module], module
        assert "morphstudio.generators" not in graph[module], f"{module} imports the generators package __init__"
    assert "morphstudio" not in graph["morphstudio.api"], "api.py imports from the package __init__"


def _torch_reachable(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """An import chain from ``start`` to torch, read from the source (third-party imports included)."""
    seen: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        seen.add(module)
        path.append(module)
        tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n == "torch" or n.startswith("torch.") or n.startswith("torchvision") for n in names):
                return path + ["torch"]
        for nxt in sorted(graph[module]):
            if nxt not in seen:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        return None

    return visit(start)


TORCH_FREE = ("morphstudio.scene", "morphstudio.timeline", "morphstudio.formats", "morphstudio.latent")


def test_scene_and_timeline_never_import_torch_in_the_source() -> None:
    graph = import_graph()
    checked = [m for m in graph if m.startswith(TORCH_FREE)]
    assert any(m.startswith("morphstudio.scene") for m in checked)
    assert any(m.startswith("morphstudio.timeline") for m in checked)
    for module in checked:
        chain = _torch_reachable(graph, module)
        assert chain is None, "torch reached: " + " -> ".join(chain or [])


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_scene_and_timeline_never_import_torch_at_run_time() -> None:
    # Importing every scene/timeline module (and formats.py when it exists) and using them on a real scene: torch
    # must not be in sys.modules afterwards.
    mods = [m for m in _modules() if m.startswith(TORCH_FREE)]
    code = f"""
import importlib, json, sys
for m in {mods!r}:
    importlib.import_module(m)
import morphstudio
from morphstudio.timeline.testing import fake_latent_space
for scene_file in ("scenes/demo.yaml", "scenes/examples/walk.yaml", "scenes/examples/attributes.yaml"):
    space = fake_latent_space(num_ws=1, w_dim=100, family="dcgan")
    scene = morphstudio.load_scene(scene_file, latent_space=space)
    assert scene.latents([0, 10]).shape == (2, 1, 100)
print(json.dumps({{"torch": "torch" in sys.modules, "modules": len({mods!r})}}))
"""
    result = _run(code)
    assert result["modules"] >= 10
    assert result["torch"] is False, "importing scene/, timeline/ or formats.py imported torch"


def _third_party_imports() -> list[str]:
    """Every non-stdlib, non-morphstudio module that morphstudio's modules import at module level (full names)."""
    names = set()
    for path in _modules().values():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            found = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            names.update(n for n in found if n.split(".")[0] not in sys.stdlib_module_names
                         and n.split(".")[0] not in ("morphstudio", "__future__"))
    return sorted(names)


_SIDE_EFFECTS = """
import importlib, json, logging, os, sys
def umask():
    for line in open("/proc/self/status"):
        if line.startswith("Umask:"):
            return line.split()[1]
def snapshot():
    import torch
    root = logging.getLogger()
    loggers = {n: len(l.handlers) for n, l in logging.root.manager.loggerDict.items()
               if isinstance(l, logging.Logger) and l.handlers}
    return {"umask": umask(), "threads": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
            "root_handlers": len(root.handlers), "root_level": root.level, "loggers": loggers,
            "environ": dict(os.environ), "cwd": os.getcwd()}
for m in PRELOAD:
    importlib.import_module(m)
calls = []
real_umask = os.umask
os.umask = lambda mask: (calls.append(mask), real_umask(mask))[1]
before = snapshot()
for m in MODULES:
    importlib.import_module(m)
after = snapshot()
os.umask = real_umask
print(json.dumps({"before": before, "after": after, "umask_calls": calls}))
"""


def _assert_unchanged(result: dict) -> None:
    before, after = result["before"], result["after"]
    assert result["umask_calls"] == [], "importing morphstudio set the umask"
    for key in before:
        if key == "environ":
            added = sorted(set(after[key]) - set(before[key]))
            changed = sorted(k for k in before[key] if after[key].get(k) != before[key][k])
            assert not added and not changed, f"os.environ changed by import: added {added}, changed {changed}"
        else:
            assert after[key] == before[key], f"{key} changed by importing morphstudio: {before[key]} -> {after[key]}"


def test_importing_morphstudio_has_no_process_wide_side_effects() -> None:
    # The public entry points in a fresh process (torch already loaded, as a caller's would be): umask, torch's
    # thread counts, logging handlers and levels, the environment and the working folder are as they were.
    entry = ["morphstudio", "morphstudio.api", "morphstudio.cli", "morphstudio.scene", "morphstudio.timeline",
             "morphstudio.generators", "morphstudio.files", "morphstudio.errors"]
    code = _SIDE_EFFECTS.replace("PRELOAD", '["torch"]').replace("MODULES", repr(entry))
    _assert_unchanged(_run(code))


def test_no_morphstudio_module_has_import_side_effects_of_its_own() -> None:
    # Every module. Its third-party dependencies are imported first, because some change the process themselves
    # when imported (opencv sets QT_QPA_* and LD_LIBRARY_PATH in os.environ, torchvision TORCHINDUCTOR_CACHE_DIR;
    # scipy and torch add warning filters): what is left to see is morphstudio's own doing.
    mods = [m for m in _modules() if not m.endswith("__main__")]
    third = _third_party_imports()
    assert "torch" in third and "numpy" in third
    code = _SIDE_EFFECTS.replace("PRELOAD", repr(third)).replace("MODULES", repr(mods))
    _assert_unchanged(_run(code))
