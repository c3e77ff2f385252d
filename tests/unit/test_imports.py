"""The shape of lab/: no import cycles, between modules or between packages (module imports anywhere in a
file count, also those inside functions), the machine packages layered one way (lab.vm ← lab.cloud ←
lab.machines), every machine module importable on its own, no module calling another's private function,
and the machine record's path built in one place."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"


def modules(lab: Path = LAB) -> dict[str, Path]:
    found = {}
    for path in sorted(lab.rglob("*.py")):
        parts = list(path.relative_to(lab.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The lab modules a file imports (`from lab.vm import keys` is lab.vm.keys)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in known:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
    return found


def graph(lab: Path = LAB) -> dict[str, set[str]]:
    known = modules(lab)
    # A package's __main__ is an entry point (`python -m lab.vm`): nothing imports it, so it closes no cycle.
    return {name: imports(path, known) - {name} for name, path in known.items() if not name.endswith(".__main__")}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle, as the modules along it, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def packages(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between lab's subpackages and top-level modules: lab.deploy.remote importing
    lab.vm.keys is lab.deploy importing lab.vm. A cycle here is layers that know each other, even where no
    module imports itself round about."""
    found: dict[str, set[str]] = {}
    for module, targets in edges.items():
        package = ".".join(module.split(".")[:2])
        found.setdefault(package, set()).update(
            t for t in (".".join(t.split(".")[:2]) for t in targets) if t != package
        )
    return found


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_imports_itself_round_about():
    assert cycle(graph()) is None


def test_a_cycle_between_packages_is_found_where_modules_have_none(tmp_path):
    """The shape lab.vm and lab.deploy had: vm.keys imported deploy.target, deploy.remote imported vm.keys."""
    lab = tmp_path / "lab"
    for name, text in {
        "__init__.py": "",
        "vm/__init__.py": "",
        "vm/keys.py": "from lab.deploy.target import known_hosts_name\n",
        "deploy/__init__.py": "",
        "deploy/target.py": "",
        "deploy/remote.py": "def login():\n    from lab.vm import keys\n",
    }.items():
        (lab / name).parent.mkdir(parents=True, exist_ok=True)
        (lab / name).write_text(text)
    assert cycle(graph(lab)) is None
    assert cycle(packages(graph(lab))) == ["lab.deploy", "lab.vm", "lab.deploy"]


def test_no_package_imports_itself_round_about():
    """Layers import downwards only: no cycle among lab's subpackages (and top-level modules)."""
    assert cycle(packages(graph())) is None


def test_the_machine_packages_are_layered_one_way():
    """lab.vm (local machines, and what every kind shares) knows neither lab.cloud nor lab.machines; lab.cloud
    does not know lab.machines; lab.machines (the registry and `lab vm`) builds on both."""
    below = {"lab.vm": ("lab.cloud", "lab.machines"), "lab.cloud": ("lab.machines",)}
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for package, forbidden in below.items()
        if module == package or module.startswith(f"{package}.")
        for target in targets
        if target.startswith(forbidden)
    ]
    assert wrong == []


def test_each_machine_module_imports_on_its_own():
    """In a fresh interpreter each, so an order that only works because something else was imported first
    shows up."""
    names = [n for n in modules() if n.startswith(("lab.vm", "lab.cloud", "lab.machines")) and "__main__" not in n]
    names += ["lab.options", "lab.deploy.target"]
    started = {
        name: subprocess.Popen([sys.executable, "-c", f"import {name}"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for name in names
    }
    failed = {name: p.communicate(timeout=120)[1].strip().splitlines()[-1:] for name, p in started.items()}
    assert {name: why for name, why in failed.items() if started[name].returncode != 0} == {}


def test_no_module_calls_another_s_private_function():
    """`module._name(…)` for a module imported by name: what it offers others is named without `_`."""
    wrong = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        imported = {
            alias.asname or alias.name.split(".")[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                wrong.append(f"{name}:{node.lineno} {node.value.id}.{node.attr}")
    assert wrong == []


def test_the_machine_record_path_is_built_in_one_place():
    """`.lab/vm/<name>/vm.json` is lab.vm.base.record_file's (and the folder base.folder's): nowhere else in
    lab/ is it spelled out."""
    spelled = re.compile(r"""["']vm\.json["']|/\s*["']vm["']\s*/""")
    wrong = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in modules().values()
        if path != LAB / "vm" / "base.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert wrong == []
