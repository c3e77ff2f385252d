"""What a framework costs besides time, for the report's "choose" table: the memory of each of its
server's workers, the lines of its app code, and the distributions its image installs. The scripts
run inside containers (the app's, the base image's) and print JSON; reading that JSON and the app
folder is pure."""

from __future__ import annotations

import io
import json
import re
import tokenize
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# -- memory per worker ----------------------------------------------------------------------------

# Every process the container's user can read: its parent, its PSS (smaps_rollup) and command line.
PROCESSES_SCRIPT = r"""
import json, os
found = []
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        pss = None
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, ValueError, IndexError):
        continue
    found.append({"pid": int(pid), "ppid": ppid, "pss": pss, "cmd": cmd})
print(json.dumps(found))
"""

# Children of the server's main process that serve no request.
HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.semaphore_tracker", "multiprocessing.forkserver")


def workers(processes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server's workers: the children of the container's main process (PID 1: a pre-forking
    server's master, or the supervisor of a server that spawns its workers) but multiprocessing's
    helpers, or PID 1 itself when it has none (a server of one process). Processes exec'd into the
    container (this probe, the health check) have no parent inside it, so they are never counted."""
    children = [p for p in processes if p["ppid"] == 1 and not any(h in p["cmd"] for h in HELPERS)]
    return children or [p for p in processes if p["pid"] == 1]


def worker_memory(processes: Sequence[dict[str, Any]]) -> dict[str, int | None]:
    """workers: how many; per_worker_bytes: their mean PSS, each with its own children's. PSS
    (proportional set size) counts a worker's private pages and its share of the pages it shares
    (copy-on-write pages from the master, the libraries), so the workers' and the master's sum to
    what the processes hold together: a worker's PSS is what each one costs, fairly split."""
    found = workers(processes)
    by_parent: dict[int, list[dict[str, Any]]] = {}
    for process in processes:
        by_parent.setdefault(process["ppid"], []).append(process)

    def tree_pss(process: dict[str, Any]) -> int | None:
        if process["pss"] is None:
            return None
        below = [tree_pss(child) for child in by_parent.get(process["pid"], []) if child["pid"] != process["pid"]]
        return None if None in below else process["pss"] + sum(b for b in below if b is not None)

    sizes = [tree_pss(w) for w in found]
    if not sizes or None in sizes:
        return {"workers": len(found) or None, "per_worker_bytes": None}
    return {"workers": len(sizes), "per_worker_bytes": round(sum(s for s in sizes if s is not None) / len(sizes))}


def parse_processes(output: str) -> list[dict[str, Any]]:
    try:
        found = json.loads(output)
    except ValueError:
        return []
    return found if isinstance(found, list) else []


# -- dependencies --------------------------------------------------------------------------------

# Every installed distribution and the names it requires (its extras' requirements left out).
DISTRIBUTIONS_SCRIPT = r"""
import json, re, importlib.metadata as m
found = {}
for d in m.distributions():
    needs = []
    for r in d.requires or []:
        if ";" in r and "extra" in r.split(";", 1)[1]:
            continue
        needs.append(re.split(r"[\s\[<>=!~;(]", r.strip(), maxsplit=1)[0])
    found[d.metadata["Name"]] = needs
print(json.dumps(found))
"""


def normalise(name: str) -> str:
    """PEP 503: Some-Name, some_name and some.name are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_distributions(output: str) -> dict[str, list[str]] | None:
    try:
        found = json.loads(output)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def dependencies(installed: dict[str, list[str]], base: Iterable[str]) -> dict[str, Any]:
    """The distributions an image installs beyond its base image's (pip): total, and direct —
    those no other installed one requires (the roots: what a requirements.in would name; the
    servers the stack declares are among them, since every image holds all of its servers)."""
    skip = {normalise(b) for b in base}
    names = {normalise(n): n for n in installed if normalise(n) not in skip}
    required = {normalise(r) for n, needs in installed.items() if normalise(n) in names for r in needs}
    direct = sorted(names[n] for n in names if n not in required)
    return {"direct": len(direct), "total": len(names), "direct_names": direct}


# -- lines of app code ---------------------------------------------------------------------------

APP_FOLDER = "app"  # stacks/<name>/app: what the Dockerfile copies to /app, the stack's own code
TEMPLATE_COMMENT = re.compile(r"^\s*(\{#.*#\}|<!--.*-->|%#.*)\s*$")


def python_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring (a statement that
    is a lone string). Falls back to counting non-blank lines not starting with # if it does not
    tokenize."""
    lines: set[int] = set()
    logical: list[tokenize.TokenInfo] = []
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in skip:
                continue
            if token.type != tokenize.NEWLINE:
                logical.append(token)
                continue
            if not all(t.type == tokenize.STRING for t in logical):
                for t in logical:
                    lines.update(range(t.start[0], t.end[0] + 1))
            logical = []
    except (tokenize.TokenError, SyntaxError):
        return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
    return len(lines)


def template_lines(source: str) -> int:
    """Non-blank lines that are not a whole-line template comment ({# #}, <!-- -->, %#)."""
    return sum(1 for line in source.splitlines() if line.strip() and not TEMPLATE_COMMENT.match(line))


def code_lines(stack_folder: Path) -> dict[str, int]:
    """Lines of the stack's own application code: every file under its app/ folder (Python and
    templates; __pycache__ and hidden files left out). The server's configuration is not there
    (stack.toml, the shared /etc/lab files), nor is the Dockerfile."""
    python = templates = files = 0
    folder = stack_folder / APP_FOLDER
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        parts = path.relative_to(folder).parts
        if not path.is_file() or "__pycache__" in parts or any(p.startswith(".") for p in parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        files += 1
        if path.suffix == ".py":
            python += python_lines(text)
        else:
            templates += template_lines(text)
    return {"python_lines": python, "template_lines": templates, "files": files}
