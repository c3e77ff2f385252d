"""The driver's side of releases: the command it runs on a host, and the rows it shows."""

import pytest

from lab import releases
from lab.errors import LabError


def test_command_on_the_host_runs_its_copy_of_rollout():
    assert releases.on_host("/opt/framework-lab", "releases", [], []) == [
        "python3", "/opt/framework-lab/rollout.py", "releases", "--record", "/opt/framework-lab/releases.json",
    ]  # fmt: skip
    args = releases.lab_args("/opt/framework-lab", "framework-lab", "postgres", "nginx", 240, "abc123", "me@here")
    assert releases.on_host("/opt/framework-lab", "rollback", args, ["--to", "2", "flask"]) == [
        "python3", "/opt/framework-lab/rollout.py", "rollback", "--project", "framework-lab",
        "--file", "/opt/framework-lab/compose.yaml", "--database", "postgres", "--proxy", "nginx",
        "--timeout", "240", "--commit", "abc123", "--by", "me@here",
        "--record", "/opt/framework-lab/releases.json", "--to", "2", "flask",
    ]  # fmt: skip


def test_rows_newest_first_with_short_ids():
    recorded = [
        {"id": 1, "time": "t1", "commit": "c1", "by": "b", "images": {"a": "sha256:" + "1" * 64}, "kept": {"a": False}},
        {"id": 2, "time": "t2", "commit": "c2", "by": "b", "note": "rollback to release 1",
         "images": {"a": "sha256:" + "2" * 64}},
    ]  # fmt: skip
    rows = releases.rows(recorded)
    assert [r["release"] for r in rows] == [2, 1]
    assert rows[0]["current"] and not rows[1]["current"]
    assert rows[0]["images"] == {"a": "2" * 12}
    assert (rows[0]["kept"], rows[1]["kept"]) == (["a"], [])


def test_release_numbers_start_at_one():
    with pytest.raises(LabError) as error:
        releases.check_to(0)
    assert error.value.code == 2
