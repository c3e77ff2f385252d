"""Opt-in (LAB_TEST_FULL_VM=1), slow: the full VM under qemu's software emulation, end to end.

`lab vm up --full` → `lab deploy --vm` → `lab verify --vm` → `lab undeploy --vm` → `lab vm down`, leaving no
qemu process and no state behind. Under TCG a deploy of every framework takes long, so by default only the
first framework is deployed and verified: LAB_TEST_FULL_VM_FRAMEWORKS names others ("all" for every one). The
steps' timings are printed (run with -s to see them). Whatever happens, the VM is killed at the end by means
that do not depend on the code under test (its pidfile, and any qemu whose command line names its state folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, run_lab

NAME = "framework-lab-vm-full"
SSH_PORT, HTTP_PORT = 12522, 18093
STATE = ROOT / ".lab" / "vm" / NAME

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("LAB_TEST_FULL_VM") != "1", reason="the full VM is slow (10+ minutes): LAB_TEST_FULL_VM=1"
    ),
]


def qemu_processes(folder: Path = STATE) -> list[int]:
    """Live qemu processes whose command line names the VM's state folder (zombies have exited already)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv and b"qemu-system" in argv[0] and str(folder).encode() in b" ".join(argv) and state != "Z":
            found.append(int(proc.name))
    return found


def kill_vm() -> None:
    """Last-resort cleanup: SIGKILL by pidfile and by command line, then remove the state."""
    pids = set(qemu_processes())
    with contextlib.suppress(OSError, ValueError):
        pids.add(int((STATE / "qemu.pid").read_text()))
    for pid in pids & set(qemu_processes()):  # the pidfile's pid only if it is that qemu still
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while qemu_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    shutil.rmtree(STATE, ignore_errors=True)


def lab(*args: str, timeout: float = 3600) -> tuple[float, object]:
    started = time.monotonic()
    result = run_lab(*args, timeout=timeout)
    return time.monotonic() - started, result


def on_vm(command: str) -> str:
    _, result = lab("vm", "ssh", "--name", NAME, command, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


HEALTH = (
    "for c in $(sudo docker ps -aq); do sudo docker inspect --format "
    "'{{.Name}} {{.State.Status}} {{if .State.Health}}{{json .State.Health}}{{end}}' $c; done; uptime"
)


@pytest.fixture
def frameworks(apps) -> list[str]:
    """The first framework, or those LAB_TEST_FULL_VM_FRAMEWORKS names (nothing named for "all")."""
    chosen = os.environ.get("LAB_TEST_FULL_VM_FRAMEWORKS", apps[0]).split()
    return [] if chosen == ["all"] else chosen


def test_up_deploy_verify_undeploy_down(frameworks):
    kill_vm()
    timings: dict[str, float] = {}
    try:
        seconds, up = lab(
            "vm", "up", "--full", "--name", NAME, "--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT)
        )
        timings["vm up --full"] = seconds
        assert up.returncode == 0, up.stdout + up.stderr
        print(f"\n{up.stderr}")
        facts = json.loads((STATE / "vm.json").read_text())
        assert facts["kind"] == "qemu" and facts["ssh_port"] == SSH_PORT and facts["http_port"] == HTTP_PORT
        assert len(qemu_processes()) == 1
        assert on_vm("systemd-detect-virt") == "qemu"  # its own kernel, not a container
        assert on_vm("uname -r").endswith("-cloud-amd64")
        assert on_vm("cloud-init status") == "status: done"
        assert on_vm("hostname") == NAME
        _, status = lab("vm", "status", "--name", NAME, "--json", timeout=60)
        row = json.loads(status.stdout)
        assert (row["state"], row["ssh"], row["image_current"]) == ("running", True, True)

        seconds, deploy = lab("deploy", "--vm", NAME, *frameworks)
        timings["deploy"] = seconds
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

        seconds, verify = lab("verify", "--vm", NAME, *frameworks)
        timings["verify"] = seconds
        print(verify.stdout[-3000:])
        if verify.returncode != 0:  # what the containers' healthchecks said, under emulation
            print(on_vm(HEALTH))
        assert verify.returncode == 0, verify.stdout[-4000:] + verify.stderr[-2000:]
        assert " 0 failed" in verify.stdout

        seconds, undeploy = lab("undeploy", "--vm", NAME)
        timings["undeploy"] = seconds
        assert undeploy.returncode == 0, undeploy.stdout[-3000:] + undeploy.stderr[-3000:]

        seconds, down = lab("vm", "down", "--name", NAME, timeout=120)
        timings["vm down"] = seconds
        assert down.returncode == 0, down.stderr
        assert qemu_processes() == [], "lab vm down left qemu running"
        assert not STATE.exists()
    finally:
        print("timings: " + ", ".join(f"{step} {seconds:.0f}s" for step, seconds in timings.items()))
        if "vm down" not in timings:  # a step failed: still, `lab vm down` must leave no qemu behind
            lab("vm", "down", "--name", NAME, timeout=120)
        left = qemu_processes()
        kill_vm()
        assert not left, f"lab vm down left qemu running: {left}"
