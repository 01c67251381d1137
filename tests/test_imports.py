"""The package's imports: no cycles, one direction (entry points -> orchestration -> system -> parts -> maths),
and nothing happens on import but definitions."""

import ast
import subprocess
import sys

from conftest import ROOT

ENTRY_POINTS = {"vae", "vae.cli", "vae.api"}  # the commands and the Python API: nothing imports them
ORCHESTRATION = {  # what runs a command: builds, trains, evaluates, loads, resumes; only entry points and its own kind import it
    "vae.training", "vae.evaluation", "vae.sampling", "vae.loading", "vae.build", "vae.resume", "vae.sweep",
    "vae.slurm", "vae.report", "vae.run_folder",
}  # fmt: skip


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the vae modules it imports, at the top or inside functions."""
    src = ROOT / "src"
    graph = {}
    for path in (src / "vae").rglob("*.py"):
        name = ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vae"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("vae")}
        graph[name] = found - {name}
    return graph


def test_the_import_graph_has_no_cycles():
    """Each module's imports of vae.*, at the top or inside functions, form no cycle."""
    graph = import_graph()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, " -> ".join([*trail, name])
        for child in graph.get(name, ()):
            if child not in done:
                visit(child, (*trail, name))
        done.add(name)

    done: set[str] = set()
    for name in graph:
        visit(name, ())


def test_no_module_imports_an_entry_point_or_climbs_to_the_orchestration():
    graph = import_graph()
    assert ENTRY_POINTS | ORCHESTRATION <= set(graph)  # the lists name real modules
    for name, imported in graph.items():
        if name not in ENTRY_POINTS:
            assert not imported & ENTRY_POINTS, f"{name} imports the entry point {imported & ENTRY_POINTS}"
        if name not in ENTRY_POINTS | ORCHESTRATION:
            assert not imported & ORCHESTRATION, f"{name} imports {imported & ORCHESTRATION}, which runs a command"


def test_importing_the_package_changes_no_logging_or_signal_handlers():
    """Every module imported, in a fresh process: the loggers and signal handlers are as they were."""
    script = """
import importlib, logging, pkgutil, signal
import lightning.pytorch  # sets up its own loggers when imported: not ours to judge

def state():
    loggers = {name: (tuple(logger.handlers), logger.level, logger.propagate)
               for name, logger in logging.root.manager.loggerDict.items() if isinstance(logger, logging.Logger)}
    return loggers, tuple(logging.root.handlers), [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]

before = state()
import vae
for module in pkgutil.walk_packages(vae.__path__, "vae."):
    importlib.import_module(module.name)
after = state()
changed = [name for name in before[0] if before[0][name] != after[0][name]]
assert not changed and before[1:] == after[1:], changed or before[1:]
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
