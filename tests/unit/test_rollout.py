"""lab/rollout.py's commands, as exact argv lists, and how it reads what `docker inspect` says."""

import ast
import subprocess
from pathlib import Path

from lab import rollout

COMPOSE = ["docker", "compose", "--project-name", "p", "--file", "c.yaml"]


def test_compose_commands():
    assert rollout.compose_up("p", "c.yaml", ["postgres"]) == [
        *COMPOSE, "up", "--detach", "--no-build", "--pull", "never", "--no-deps", "postgres",
    ]  # fmt: skip
    assert rollout.compose_up("p", "c.yaml", ["a", "b"], recreate=True)[-3:] == ["--force-recreate", "a", "b"]
    assert rollout.compose_scale("p", "c.yaml", "flask", 2) == [
        *COMPOSE, "up", "--detach", "--no-build", "--pull", "never", "--no-deps", "--no-recreate",
        "--scale", "flask=2", "flask",
    ]  # fmt: skip
    assert rollout.compose_config("p", "c.yaml") == [*COMPOSE, "config", "--format", "json"]


def test_docker_commands():
    assert rollout.containers_of("p", "flask") == [
        "docker", "ps", "--all", "--quiet", "--no-trunc",
        "--filter", "label=com.docker.compose.project=p", "--filter", "label=com.docker.compose.service=flask",
    ]  # fmt: skip
    assert rollout.pin("n1", "flask", ["10.0.0.2", "10.0.0.3"]) == [
        "docker", "exec", "n1", "render-upstreams", "--pin", "flask", "10.0.0.2", "10.0.0.3",
    ]  # fmt: skip
    assert rollout.unpin("n1", "flask") == ["docker", "exec", "n1", "render-upstreams", "--unpin", "flask"]
    assert rollout.push_routes("n1") == ["docker", "exec", "n1", "render-upstreams"]
    assert rollout.stop(["a", "b"]) == ["docker", "stop", "--time", "30", "a", "b"]
    assert rollout.remove(["a"]) == ["docker", "rm", "--force", "--volumes", "a"]
    assert rollout.logs("a") == ["docker", "logs", "--tail", "20", "a"]
    assert rollout.image_id("framework-lab/x:latest") == [
        "docker", "image", "inspect", "--format", "{{.Id}}", "framework-lab/x:latest",
    ]  # fmt: skip


def test_probe_runs_the_images_own_healthcheck():
    assert rollout.probe_command(["CMD", "lab-healthcheck"]) == ["lab-healthcheck"]
    assert rollout.probe_command(["CMD-SHELL", "pg_isready -q"]) == ["/bin/sh", "-c", "pg_isready -q"]
    assert rollout.probe_command(["NONE"]) is None
    assert rollout.probe_command(None) is None


def test_container_from_inspect():
    data = {
        "Id": "abc",
        "Name": "/p-flask-2",
        "Image": "sha256:1",
        "Config": {"Healthcheck": {"Test": ["CMD", "x"]}},
        "State": {"Status": "running", "Health": {"Status": "starting"}},
        "NetworkSettings": {"Networks": {"p_web": {"IPAddress": "10.1.0.5"}, "p_data": {"IPAddress": ""}}},
    }
    c = rollout.Container.from_inspect(data)
    assert (c.id, c.name, c.image, c.status, c.health) == ("abc", "p-flask-2", "sha256:1", "running", "starting")
    assert c.healthcheck == ["CMD", "x"] and c.addresses == {"p_web": "10.1.0.5"}
    bare = rollout.Container.from_inspect({**data, "Config": {}, "State": {"Status": "exited"}, "NetworkSettings": {}})
    assert (bare.health, bare.healthcheck, bare.addresses) == ("", None, {})


def test_ready_probes_now_unless_settled_is_asked():
    """The probe runs the image's healthcheck at once; settled waits for Docker's own check, which
    compose's service_healthy and the host checks read (a restarted database reads "starting")."""
    probed: list[list[str]] = []

    def runner(argv, check=True, timeout=None):
        probed.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    starting = rollout.Container("abc", "p-postgres-1", "sha256:1", "running", "starting", ["CMD", "x"], {})
    assert rollout.ready(starting, runner) is True
    assert probed == [["docker", "exec", "abc", "x"]]
    assert rollout.ready(starting, runner, settled=True) is False
    assert len(probed) == 1, "settled never runs the probe"
    healthy = rollout.Container("abc", "p-postgres-1", "sha256:1", "running", "healthy", ["CMD", "x"], {})
    assert rollout.ready(healthy, runner, settled=True) is True


def test_usage_error_exits_2(capsys):
    try:
        rollout.main(["up", "--project", "p"])
    except SystemExit as exit:
        assert exit.code == 2
    else:
        raise AssertionError("argparse accepted a missing --file")


def test_standard_library_only():
    """The deploy role runs this file on hosts that have only python3: nothing from lab, no PyPI."""
    tree = ast.parse(Path(rollout.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = {"__future__", "argparse", "contextlib", "json", "os", "subprocess", "sys", "time", "collections",
               "concurrent", "dataclasses"}  # fmt: skip
    assert imported <= allowed, imported


def release(n: int, **images: str) -> dict:
    return {"id": n, "time": "t", "commit": "c", "by": "b", "images": images}


def test_release_tag():
    assert rollout.release_tag("framework-lab/x:latest", "lab", 7) == "framework-lab/x:lab-release-7"
    assert rollout.release_tag("registry:5000/lab/x:latest", "p", 2) == "registry:5000/lab/x:p-release-2"


def test_keeps_the_newest_distinct_images_per_app():
    releases = [release(1, a="i1", b="j1"), release(2, a="i2", b="j1"), release(3, a="i3", b="j1"),
                release(4, a="i3", b="j2"), release(5, a="i4", b="j2")]  # fmt: skip
    # a: i4, i3 (releases 4 and 3), i2 are the newest three; i1 (release 1) goes. b has two images only.
    assert rollout.beyond_keep(releases, keep=3) == [(1, "a")]
    beyond = {(4, "a"), (3, "a"), (2, "a"), (1, "a"), (3, "b"), (2, "b"), (1, "b")}  # release 4's b is j2: kept
    assert set(rollout.beyond_keep(releases, keep=1)) == beyond
    releases[0]["kept"] = {"a": False}  # already untagged: not again
    assert rollout.beyond_keep(releases, keep=3) == []


def test_releases_file_round_trip(tmp_path):
    path = str(tmp_path / "releases.json")
    assert rollout.load_releases(path) == []
    rollout.save_releases(path, [release(1, a="i1")])
    assert rollout.load_releases(path) == [release(1, a="i1")]
    assert [p.name for p in tmp_path.iterdir()] == ["releases.json"]  # no temporary file left
