"""The "choose" table's costs besides time: memory per worker (from /proc), lines of app code,
dependencies (installed distributions), and the table itself."""

from __future__ import annotations

import json
import subprocess
import sys

from lab import stacks as stacklib
from lab.bench import footprint, report, schema, tables
from lab.bench.footprint import code_lines, dependencies, python_lines, template_lines, worker_memory, workers

from .test_bench import make_document

MiB = 2**20


def _process(pid: int, ppid: int, mib: float | None, cmd: str = "python") -> dict:
    return {"pid": pid, "ppid": ppid, "pss": None if mib is None else int(mib * MiB), "cmd": cmd}


def test_workers_are_the_main_process_children_and_probes_are_left_out():
    gunicorn = [
        _process(1, 0, 20, "gunicorn: master [app:app]"),
        _process(7, 1, 30, "gunicorn: worker [app:app]"),
        _process(8, 1, 34, "gunicorn: worker [app:app]"),
        _process(40, 0, 9, "python3 -c import json"),  # exec'd into the container: its parent is outside
    ]
    assert [w["pid"] for w in workers(gunicorn)] == [7, 8]
    assert worker_memory(gunicorn) == {"workers": 2, "per_worker_bytes": 32 * MiB}


def test_multiprocessing_helpers_are_not_workers_and_a_workers_children_are_its_own():
    uvicorn = [
        _process(1, 0, 25, "uvicorn --workers 2 main:app"),
        _process(5, 1, 3, "python -c from multiprocessing.resource_tracker import main;main(6)"),
        _process(6, 1, 40, "python -c from multiprocessing.spawn import spawn_main"),
        _process(9, 1, 44, "python -c from multiprocessing.spawn import spawn_main"),
        _process(12, 9, 4, "sh -c helper"),
    ]
    assert [w["pid"] for w in workers(uvicorn)] == [6, 9]
    assert worker_memory(uvicorn) == {"workers": 2, "per_worker_bytes": 44 * MiB}  # (40 + 44 + 4) / 2


def test_a_server_of_one_process_is_its_own_worker_and_unreadable_memory_is_unknown():
    assert worker_memory([_process(1, 0, 50), _process(30, 0, 9)]) == {"workers": 1, "per_worker_bytes": 50 * MiB}
    assert worker_memory([_process(1, 0, 20), _process(7, 1, None)]) == {"workers": 1, "per_worker_bytes": None}
    assert worker_memory([]) == {"workers": None, "per_worker_bytes": None}


def test_the_processes_script_reads_this_machines_proc():
    """The script run in the app's container, run here: it finds itself, with a PSS."""
    output = subprocess.run([sys.executable, "-c", footprint.PROCESSES_SCRIPT], capture_output=True, text=True)
    found = footprint.parse_processes(output.stdout)
    assert found and all({"pid", "ppid", "pss", "cmd"} <= set(p) for p in found)
    assert any(p["cmd"].startswith(sys.executable) and p["pss"] and p["pss"] > MiB for p in found)
    assert footprint.parse_processes("not json") == []


def test_dependencies_beyond_the_base_direct_ones_required_by_none():
    installed = {
        "pip": [],
        "Flask": ["Werkzeug", "Jinja2", "itsdangerous"],
        "Flask-SQLAlchemy": ["flask", "sqlalchemy"],
        "SQLAlchemy": ["greenlet", "typing_extensions"],
        "Werkzeug": ["MarkupSafe"],
        "Jinja2": ["MarkupSafe"],
        "itsdangerous": [],
        "MarkupSafe": [],
        "greenlet": [],
        "typing-extensions": [],
        "gunicorn": ["packaging"],  # not installed: no edge counts
    }
    found = dependencies(installed, ["pip"])
    assert found == {"direct": 2, "total": 10, "direct_names": ["Flask-SQLAlchemy", "gunicorn"]}
    assert dependencies({"pip": []}, ["pip"]) == {"direct": 0, "total": 0, "direct_names": []}


def test_the_distributions_script_reads_an_environment():
    output = subprocess.run([sys.executable, "-c", footprint.DISTRIBUTIONS_SCRIPT], capture_output=True, text=True)
    found = footprint.parse_distributions(output.stdout)
    assert found is not None and "rich" in {footprint.normalise(n) for n in found}
    assert "pygments" in {footprint.normalise(n) for n in found["rich"]}
    assert footprint.parse_distributions("[]") is None and footprint.parse_distributions("") is None


def test_python_lines_leave_out_blanks_comments_and_docstrings():
    source = '''"""A module docstring
over two lines."""

import os  # a trailing comment keeps the line

# a comment


def f(x):
    """One line."""
    return (x +
            1)
'''
    assert python_lines(source) == 4  # import, def, return over two lines
    assert python_lines("def broken(:\n    pass\n# c\n") == 2  # does not tokenize: non-blank, not # lines


def test_template_lines_leave_out_blanks_and_whole_line_comments():
    text = "<!-- a comment -->\n{# another #}\n\n<ul>\n{% for f in fortunes %}<li>{{ f }}</li>{% endfor %}\n</ul>\n"
    assert template_lines(text) == 3


def test_code_lines_count_the_app_folder_only(tmp_path):
    app = tmp_path / "app"
    (app / "templates").mkdir(parents=True)
    (app / "__pycache__").mkdir()
    (app / "app.py").write_text("import os\n\n# c\nprint(os)\n")
    (app / "templates" / "index.html").write_text("<p>\n\n</p>\n")
    (app / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\x00\xff")
    (tmp_path / "stack.toml").write_text('name = "x"\n')  # the server's configuration: not app code
    assert code_lines(tmp_path) == {"python_lines": 2, "template_lines": 2, "files": 2}
    assert code_lines(tmp_path / "nowhere") == {"python_lines": 0, "template_lines": 0, "files": 0}


def test_every_app_stack_has_app_code(root):
    for stack in stacklib.discover(root / "stacks"):
        if stack.kind == "app":
            found = code_lines(stack.path)
            assert found["python_lines"] > 20 and found["files"] >= 1, (stack.name, found)


def _costed(document: dict) -> dict:
    for entry in document["frameworks"]:
        entry["memory"].update({"workers": 2, "per_worker_bytes": 31 * MiB})
        entry["code"] = {"python_lines": 86, "template_lines": 23, "files": 3}
        entry["dependencies"] = {"direct": 6, "total": 16, "direct_names": ["Flask-SQLAlchemy", "gunicorn"]}
    return document


def test_the_choose_table_has_every_column_of_the_issue():
    document = _costed(make_document())
    assert schema.errors(document) == []
    header, rows = tables.choose_rows(document)
    assert header == [
        "framework",
        "best server",
        "plaintext req/s",
        "db req/s",
        "plaintext req/s per core",
        "plaintext p99",
        "memory per worker",
        "image",
        "start → healthy",
        "app code (lines)",
        "dependencies",
    ]
    assert rows[0][6:] == ["31 MiB × 2", "170 MB", "3.1 s", "86 py + 23 tpl", "6 direct, 16 total"]
    text = report.markdown(document)
    assert "| 31 MiB × 2 | 170 MB | 3.1 s | 86 py + 23 tpl | 6 direct, 16 total |" in text
    assert "86 py + 23 tpl" in report.html_page(document)


def test_files_without_the_costs_load_and_show_dashes():
    document = make_document()  # written before them: no code, dependencies, workers
    assert schema.errors(document) == []
    _, rows = tables.choose_rows(document)
    assert rows[0][6] == "—" and rows[0][9:] == ["—", "—"]
    unknown = _costed(make_document())
    unknown["frameworks"][0]["dependencies"] = None
    unknown["frameworks"][0]["memory"].update({"workers": None, "per_worker_bytes": None})
    assert schema.errors(unknown) == []
    assert tables.choose_rows(unknown)[1][0][10] == "—"
    broken = _costed(make_document())
    broken["frameworks"][0]["code"]["lines"] = 3
    assert schema.errors(broken)
    json.dumps(document)
