"""One home per mechanism, checked on the code itself: waiting for a container to be healthy is
lab/rollout.py's probe and nothing else's."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def polls_health(path: Path) -> list[int]:
    """Lines of `while` loops that read Docker's health status themselves (engine.health_of, or a
    `…State.Health…` inspect template): a wait of their own."""
    found = []
    for loop in ast.walk(ast.parse(path.read_text())):
        if not isinstance(loop, ast.While):
            continue
        for node in ast.walk(loop):
            name = getattr(node.func, "attr", getattr(node.func, "id", "")) if isinstance(node, ast.Call) else ""
            spelled = isinstance(node, ast.Constant) and isinstance(node.value, str) and "Health" in node.value
            if name == "health_of" or spelled:
                found.append(loop.lineno)
                break
    return found


def health_pollers(lab: Path) -> list[str]:
    return [
        f"{path.relative_to(lab.parent)}:{line}"
        for path in sorted(lab.rglob("*.py"))
        if path != lab / "rollout.py"
        for line in polls_health(path)
    ]


def test_the_finder_sees_a_wait_of_its_own(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "a.py").write_text(
        textwrap.dedent("""\
            def start(c):
                while True:
                    c.reload()
                    if engine.health_of(c) == "healthy":
                        return
            """)
    )
    (lab / "b.py").write_text(
        textwrap.dedent("""\
            def start(s):
                while s.waiting():
                    s.sudo(f"docker inspect --format '{{{{.State.Health.Status}}}}' {s.name}")
            """)
    )
    (lab / "c.py").write_text("def rows(cs):\n    return [engine.health_of(c) for c in cs]\n")  # one look, no wait
    assert health_pollers(lab) == ["lab/a.py:2", "lab/b.py:2"]


def test_every_wait_until_healthy_is_the_rollout_probe():
    """lab up and the deploy role (Rollout), the verifier's database restart (here and on a host) and the
    bench's restarts all call lab.rollout.wait_all; no other module polls Docker's health in a loop."""
    assert health_pollers(ROOT / "lab") == []
