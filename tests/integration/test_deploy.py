"""End to end against the local stand-in VM: vm up → bad input leaves the host as it was → deploy (--backup:
none, the host has no lab yet) → verify over SSH → a short `lab bench --vm` → a backup of the host, rows
changed, a damaged copy refused, the restore brings the rows back → a changed host key stops the next deploy
before anything is sent → a second deploy (with a backup) changes nothing → one framework changed is shipped
and swapped alone under 64 connections of load with no failed request → `lab releases --vm` and
`lab rollback --vm` under load → `--host root@…` twice (the first shuts root out and carries on as the deploy user, the
second logs in as that user) → SSH dropped in the middle of image shipping, then deploy again → `--domain` against
Pebble: a certificate issued, verified and renewed under load → a second
controller with new secrets deploys → undeploy (the SSH drop and the second controller are slow failure variants:
LAB_TEST_VARIANTS=1 runs them) → vm down, leaving nothing behind. Every `lab` command runs
with fake cloud tokens in its environment, and none of them may be stored anywhere.
On the VM's default release (Debian 13); LAB_TEST_DEBIAN=12 (or 12,13) runs it on Debian 12 (test ids [debian12])."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from lab import tls
from lab.bench import schema
from lab.load import CountedLoad
from lab.vm import commands as vmcommands
from tests.integration import pebble
from tests.integration.conftest import (
    LAB,
    ROOT,
    VARIANTS,
    debian_releases,
    get,
    lab_env,
    remove_standins,
    run_lab,
    verify_failures,
)

pytestmark = pytest.mark.integration
VM = "framework-lab-vm-e2e"
SSH_PORT, HTTP_PORT = 12322, 18091
KNOWN_HOSTS = ROOT / ".lab" / "known_hosts"
BACKUPS = ROOT / ".lab" / "backups" / VM
RELEASES = debian_releases()  # one VM at a time: each release's tests run, then its VM goes
# A request under the swap loads may wait this long before it counts as failed. The stand-in shares this machine's
# 2 cores with the 64 load threads, Ansible and `docker load`: CI saw web2py (the slowest app, unchanged) answer a
# few requests after more than 5 s while bottle was swapped. A slow answer is a stall, shown as `slowest`; a
# failed request is a broken connection or another status than 200, whatever its time.
SWAP_LOAD = {"connections": 16, "duration": 600, "max_requests": 2_000_000, "timeout": 30.0}
DOMAIN = "lab.e2e.test"  # Pebble's DNS (challtestsrv) answers it with the stand-in's address
PEBBLE_PORTS = pebble.Ports(acme=28240, management=28250, dns=28253, challtest=28255)


# Planted in the environment of every lab command here: the README promises a token is never stored.
FAKE_TOKENS = {
    "HCLOUD_TOKEN": f"fl-fake-hcloud-{uuid.uuid4().hex}",
    "DIGITALOCEAN_TOKEN": f"fl-fake-digitalocean-{uuid.uuid4().hex}",
}


def vm_env(**extra: str) -> dict[str, str]:
    return lab_env(**FAKE_TOKENS, **extra)


def files_with_tokens(*folders: Path) -> list[str]:
    """Every file under the folders that holds one of the planted tokens."""
    found = []
    for token in FAKE_TOKENS.values():
        argv = ["grep", "-rlF", "--", token, *[str(f) for f in folders if f.exists()]]
        found += subprocess.run(argv, capture_output=True, text=True).stdout.split()
    return found


def on_vm(command: str) -> subprocess.CompletedProcess:
    return run_lab("vm", "ssh", "--name", VM, command, env=vm_env())


def vm_containers() -> dict[str, tuple[str, str]]:
    """name -> (id, started at) of the lab's containers inside the VM."""
    result = on_vm(
        "sudo docker ps --filter label=com.docker.compose.project=framework-lab "
        "--format '{{.Names}} {{.ID}} {{.RunningFor}}' ; true"
    )
    ids = {}
    for line in result.stdout.splitlines():
        name, cid, *_ = line.split()
        inspect = on_vm(f"sudo docker inspect --format '{{{{.State.StartedAt}}}}' {cid}").stdout.strip()
        ids[name] = (cid, inspect)
    return ids


def forget_host_key() -> None:
    """What a VM on the same port left in the lab's known_hosts (`lab vm up` pins each VM's own key)."""
    if KNOWN_HOSTS.exists():
        subprocess.run(["ssh-keygen", "-f", str(KNOWN_HOSTS), "-R", f"[127.0.0.1]:{SSH_PORT}"], capture_output=True)


def vm_debian() -> str:
    """The Debian release of the VM that is up ("12" or "13"), as vm.json records it."""
    return json.loads((ROOT / ".lab" / "vm" / VM / "vm.json").read_text())["debian"]


@pytest.fixture(scope="module", params=RELEASES, ids=lambda debian: f"debian{debian}")
def vm(request, engine):
    remove_standins(engine, [VM])
    forget_host_key()
    shutil.rmtree(BACKUPS, ignore_errors=True)
    try:
        ports = ("--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT))
        result = run_lab("vm", "up", "--name", VM, *ports, "--debian", request.param, env=vm_env())
        assert result.returncode == 0, result.stderr
        assert vm_debian() == request.param
        yield json.loads((ROOT / ".lab" / "vm" / VM / "vm.json").read_text())
    finally:
        run_lab("vm", "down", "--name", VM, env=vm_env())
        forget_host_key()
        shutil.rmtree(BACKUPS, ignore_errors=True)
        assert not remove_standins(engine, [VM]), "lab vm down left the VM's container behind"


def deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_lab("deploy", "--vm", VM, *args, env=env or vm_env())


def unchanged_host(vm) -> None:
    assert on_vm("test ! -e /opt/framework-lab && ! id deploy && ! command -v docker").returncode == 0, (
        "a failed deploy changed the host"
    )


def test_unreachable_host(vm):
    result = run_lab("deploy", "--host", "lab@127.0.0.1:1", "--key", vm["key"], env=vm_env())
    assert result.returncode == 1
    assert "unreachable" in result.stderr


def test_wrong_key(vm, tmp_path):
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    result = run_lab("deploy", "--host", f"lab@127.0.0.1:{SSH_PORT}", "--key", str(key), env=vm_env())
    assert result.returncode == 1
    assert "unreachable" in result.stderr and "Permission denied" in result.stderr
    unchanged_host(vm)


def test_user_without_sudo(vm):
    assert (
        on_vm(
            "sudo useradd --create-home --shell /bin/bash nosudo && sudo mkdir -p ~nosudo/.ssh && "
            "sudo cp ~/.ssh/authorized_keys ~nosudo/.ssh/ && sudo chown -R nosudo: ~nosudo/.ssh"
        ).returncode
        == 0
    )
    try:
        result = run_lab("deploy", "--host", f"nosudo@127.0.0.1:{SSH_PORT}", "--key", vm["key"], env=vm_env())
        assert result.returncode == 1
        assert re.search(r"sudo|password", result.stderr, re.I), result.stderr
        unchanged_host(vm)
    finally:
        on_vm("sudo userdel --remove nosudo")


def test_host_that_is_not_debian(vm):
    assert (
        on_vm(
            "sudo cp /etc/os-release /etc/os-release.lab && "
            "printf 'NAME=Fedora\\nID=fedora\\nVERSION_ID=41\\n' | sudo tee /usr/lib/os-release.fake >/dev/null && "
            "sudo ln -sf /usr/lib/os-release.fake /etc/os-release"
        ).returncode
        == 0
    )
    try:
        result = deploy()
        assert result.returncode == 1
        assert "deploys to Debian or Ubuntu" in result.stderr
        unchanged_host(vm)
    finally:
        on_vm("sudo mv /etc/os-release.lab /etc/os-release")


def tunnels_left() -> list[str]:
    """`lab bench --vm` forwards the host's Docker socket with ssh -L into /tmp/lab-docker-*."""
    found = subprocess.run(["pgrep", "-af", "lab-docker-"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in found if "pgrep" not in line] + [str(p) for p in Path("/tmp").glob("lab-docker-*")]


def bench(*args: str, out: Path) -> subprocess.CompletedProcess:
    argv = ["bench", *args, "--vm", VM, "--duration", "2", "--concurrency", "8", "--pause", "0", "--out", str(out)]
    return run_lab(*argv, env=vm_env())


def test_bench_before_deploy(vm, tmp_path):
    """No Docker on the host yet: a clear error, no results, no tunnel left behind."""
    result = bench("--tests", "plaintext", out=tmp_path / "out")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot use the host's Docker engine" in result.stderr and "lab deploy" in result.stderr
    assert not (tmp_path / "out").exists()
    assert tunnels_left() == []


def check_bench_on_host(app: str, tmp_path: Path) -> None:
    """A short `lab bench --vm`: wrk shipped to the host and run there, results for the host."""
    missing = bench("--tests", "plaintext", "no-such-framework", out=tmp_path / "bad")
    assert missing.returncode == 2 and "unknown framework" in missing.stderr

    result = bench(app, "--tests", "plaintext,db", out=tmp_path / "bench")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    document = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert schema.errors(document) == []
    assert document["settings"]["host"] == VM and document["settings"]["cpu_counters"] == "engine stats"
    assert document["machine"]["hostname"] == VM  # the host's facts, not this machine's
    assert document["machine"]["os"].startswith(f"Debian GNU/Linux {vm_debian()} ")
    assert [f["name"] for f in document["frameworks"] if f["measured"]] == [app]
    cells = {(c["target"], c["test"]): c for c in document["cells"]}
    for key in ((app, "plaintext"), (app, "db"), ("ceiling", "plaintext")):
        assert cells[key]["requests_per_s"]["median"] > 0 and cells[key]["runs_with_errors"] == 0, key
    measured = [r for r in document["runs"] if r["target"] == app and not r["warmup"]]
    assert all(r["cpu_s"]["app"] and r["cpu_s"]["nginx"] and r["memory_peak_bytes"] for r in measured)
    assert next(r for r in measured if r["test"] == "db")["cpu_s"]["postgres"] > 0
    assert "framework-lab/wrk:latest" in on_vm("sudo docker image ls --format '{{.Repository}}:{{.Tag}}'").stdout
    assert on_vm("sudo docker ps --all --quiet --filter label=framework-lab.bench").stdout.strip() == ""
    assert tunnels_left() == []


def in_vm(engine, command: str) -> str:
    """A command as root in the stand-in's container, not over SSH (for when SSH must refuse)."""
    code, output = engine.containers.get(VM).exec_run(["sh", "-c", command])
    assert code == 0, output.decode()
    return output.decode()


def secrets_on_host(engine) -> str:
    return in_vm(engine, "stat -c '%n %s %i %Y %Z' /opt/framework-lab/secrets /opt/framework-lab/secrets/*")


def world_checksum(engine) -> str:
    sql = "SELECT md5(string_agg(id || ':' || randomnumber, ',' ORDER BY id)) FROM world"
    return in_vm(
        engine, f"docker exec framework-lab-postgres-1 psql -X -tA -U postgres -d hello_world -c {shlex.quote(sql)}"
    ).strip()


def check_backup_and_restore_on_host(engine, app: str) -> None:
    """`lab backup --vm` streams the host's dump here (0600, its manifest beside it); rows changed through
    /updates; `lab restore --vm` brings the world table back; a damaged copy is refused, the data untouched."""
    before = world_checksum(engine)
    taken = run_lab("backup", "--vm", VM, env=vm_env())
    assert taken.returncode == 0, taken.stderr[-2000:]
    dump = Path(taken.stdout.strip().splitlines()[-1])
    assert dump.parent == BACKUPS and oct(dump.stat().st_mode & 0o777) == oct(0o600)
    manifest = json.loads(dump.with_name(dump.name + ".json").read_text())
    assert (manifest["target"], manifest["bytes"]) == (VM, dump.stat().st_size)
    for _ in range(3):
        assert get(f"/{app}/updates?queries=20", port=HTTP_PORT).status == 200
    changed = world_checksum(engine)
    assert changed != before

    cut = dump.with_name("cut.dump")
    cut.write_bytes(dump.read_bytes()[:-100])
    cut.with_name("cut.dump.json").write_text(dump.with_name(dump.name + ".json").read_text())
    refused = run_lab("restore", str(cut), "--vm", VM, "--yes", env=vm_env())
    assert refused.returncode == 2 and "checksum does not match" in refused.stderr, refused.stderr[-2000:]
    assert world_checksum(engine) == changed

    done = run_lab("restore", str(dump), "--vm", VM, "--yes", env=vm_env())
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert re.search(rf"answering from it: .*\b{app}\b", done.stdout), done.stdout
    assert world_checksum(engine) == before
    assert get(f"/{app}/updates?queries=20", port=HTTP_PORT).status == 200


def ansible_runs(name: str = VM) -> list[str]:
    return sorted(p.name for p in (ROOT / ".lab" / "deploy" / name / "artifacts").glob("*"))


def check_changed_host_key_is_refused(engine) -> None:
    """The VM's host key changes between two deploys: the next one stops before Ansible starts, with
    one clear message naming the host and the known_hosts line to remove; the host's secrets untouched."""
    secrets, runs = secrets_on_host(engine), ansible_runs()
    in_vm(
        engine,
        "mkdir -p /root/lab-host-key && cp -a /etc/ssh/ssh_host_ed25519_key* /root/lab-host-key/ && "
        "rm /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && "
        "systemctl restart ssh",
    )
    try:
        result = deploy()
        message = " ".join(result.stderr.split())
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        name = f"[127.0.0.1]:{SSH_PORT}"
        assert f"the host key of {name} is not the one the lab knows: refusing to connect" in message, message
        assert re.search(rf"remove line \d+ of {re.escape(str(KNOWN_HOSTS))}", message), message
        assert f"ssh-keygen -f {KNOWN_HOSTS} -R '{name}'" in message, message
        assert ansible_runs() == runs  # Ansible never started: nothing was copied
        assert secrets_on_host(engine) == secrets
        verify = run_lab("verify", "--vm", VM, "--no-infra", env=vm_env())
        assert verify.returncode == 1 and "refusing to connect" in verify.stderr, verify.stderr[-2000:]
    finally:
        in_vm(engine, "cp -a /root/lab-host-key/* /etc/ssh/ && rm -r /root/lab-host-key && systemctl restart ssh")


def check_root_deploy(vm, engine, app: str) -> None:
    """`lab deploy --host root@…` as the README shows it, to a host that lets root in with the key (and whose
    sshd also listens on 2222): the first run shuts root out and carries on as the deploy user (it ships the
    image that differs over a new SSH session after that), the second, the same command line, logs in as
    the deploy user and changes nothing. The firewall keeps every port sshd listens on."""
    # The host lacks one image (its tag only: the container goes on), so the first run ships it over a new SSH
    # session after root is shut out.
    in_vm(engine, f"docker tag framework-lab/{app}:latest lab-test/kept:1 && docker rmi framework-lab/{app}:latest")
    in_vm(
        engine,
        "install -d -m 700 /root/.ssh && cp /home/lab/.ssh/authorized_keys /root/.ssh/ && "
        "rm -f /etc/ssh/sshd_config.d/10-framework-lab.conf && "
        "printf 'Port 22\\nPort 2222\\n' > /etc/ssh/sshd_config.d/05-lab-test-ports.conf && systemctl reload ssh",
    )
    root = ["deploy", "--host", f"root@127.0.0.1:{SSH_PORT}", "--key", vm["key"]]
    try:
        first = run_lab(*root, env=vm_env())
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
        assert f"shipped framework-lab/{app}:latest" in first.stdout, first.stdout
        assert "changed: Harden sshd" in first.stdout
        argv = vmcommands.ssh(Path(vm["key"]), SSH_PORT, "root", command=["true"], known_hosts=KNOWN_HOSTS)
        as_root = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert as_root.returncode == 255 and "Permission denied" in as_root.stderr, as_root.stderr

        again = run_lab(*root, env=vm_env())
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
        assert ", 0 changed," in again.stdout and "shipped nothing" in again.stdout, again.stdout
        assert "carrying on as deploy" in " ".join(again.stderr.split())

        rules = in_vm(engine, "nft list table inet framework_lab")
        (ports,) = re.findall(r"tcp dport \{ ([0-9, ]+) \} accept", rules)
        assert {int(p) for p in ports.split(",")} == {22, 2222, 80, 443}, rules
    finally:
        in_vm(engine, "rm -f /etc/ssh/sshd_config.d/05-lab-test-ports.conf /root/.ssh/authorized_keys")
        in_vm(engine, "systemctl reload ssh; docker rmi lab-test/kept:1 >/dev/null 2>&1; true")


def ship_loads() -> list[int]:
    """Pids of this machine's ssh processes that stream an image into the host's `docker load` (ship-image)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv and argv[0].endswith(b"ssh") and b"sudo docker load" in argv:
            pids.append(int(proc.name))
    return pids


def check_ssh_dropped_while_shipping(engine, app: str) -> None:
    """The SSH connection dies in the middle of `docker save | ssh docker load`: the deploy fails naming the
    step, the host goes on serving what it served, and the next deploy ships the image and succeeds."""
    # Untag the image on the host (the container goes on), so the deploy has an image to ship.
    in_vm(engine, f"docker tag framework-lab/{app}:latest lab-test/kept:2 && docker rmi framework-lab/{app}:latest")
    try:
        before = vm_containers()
        process = subprocess.Popen(
            [*LAB, "deploy", "--vm", VM],
            cwd=ROOT,
            env=vm_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed: list[int] = []
        deadline = time.monotonic() + 600
        while process.poll() is None and not killed and time.monotonic() < deadline:
            for pid in ship_loads():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.005)
        out, err = process.communicate(timeout=600)
        assert killed, "the deploy shipped nothing, so no connection could be dropped"
        message = " ".join(err.split())
        assert process.returncode == 1, out[-2000:] + err[-2000:]
        assert "Ship the images that differ" in message and f"shipping framework-lab/{app}:latest failed" in message
        assert vm_containers() == before  # nothing was restarted on a half-shipped image
        again = deploy()
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
        assert f"shipped framework-lab/{app}:latest" in again.stdout, again.stdout
        assert vm_containers() == before  # the same image ID: its container goes on
    finally:
        in_vm(engine, "docker rmi lab-test/kept:2 >/dev/null 2>&1; true")


def check_rollback_on_host(app: str, other: str) -> None:
    """The deploy of the changed app recorded a release on the host; `lab rollback APP --vm` swaps the
    previous image back in under load, and records that too."""
    listed = run_lab("releases", "--vm", VM, "--json", env=vm_env())
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = json.loads(listed.stdout)
    assert len(rows) >= 2 and rows[0]["current"], rows
    assert rows[0]["images"][app] != rows[1]["images"][app], rows  # the changed app's new image
    previous = rows[1]["images"][app]
    paths = [f"/{app}/plaintext", f"/{app}/db", f"/{other}/plaintext", f"/{other}/db"]
    with CountedLoad(HTTP_PORT, paths, **SWAP_LOAD) as load:
        back = run_lab("rollback", app, "--vm", VM, env=vm_env())
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-3000:]
    tallies = load.tallies()
    report = {p: (t.ok, t.failed, t.reasons(), f"slowest {t.slowest:.1f}s") for p, t in tallies.items()}
    print(f"lab rollback {app} --vm under load: {back.stdout.strip()} {report}")
    assert sum(t.failed for t in tallies.values()) == 0, report
    rows = json.loads(run_lab("releases", "--vm", VM, "--json", env=vm_env()).stdout)
    assert rows[0]["images"][app] == previous and rows[0]["note"].startswith("rollback to release"), rows
    running = on_vm(f"sudo docker ps --filter label=com.docker.compose.service={app} --format '{{{{.Image}}}}'")
    assert running.stdout.split() == [f"framework-lab/{app}:latest"]  # one container, under the app's own tag


def check_second_controller(engine, app: str, tmp_path: Path) -> None:
    """Another checkout (its own, new secrets) deploys to the same host: every container takes the new
    password, so an app that restarts later still reaches the database."""
    home = tmp_path / "second-controller"
    for folder in ("lab", "stacks", "compose", "playbooks"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".lab", home / ".lab", ignore=shutil.ignore_patterns("deploy", "vm", "secrets", "lock"))
    shutil.copytree(ROOT / ".lab" / "vm" / VM, home / ".lab" / "vm" / VM)
    assert run_lab("build", env=vm_env(LAB_HOME=str(home))).returncode == 0  # makes its secrets; images are current
    result = deploy(env=vm_env(LAB_HOME=str(home)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    container = in_vm(engine, f"docker ps --quiet --filter label=com.docker.compose.service={app}").strip()
    in_vm(engine, f"docker restart --time 10 {container}")
    deadline = time.monotonic() + 120
    health = f"docker inspect --format '{{{{.State.Health.Status}}}}' {container}"
    while in_vm(engine, health).strip() != "healthy":
        assert time.monotonic() < deadline, f"{app} is not healthy after a restart with the second controller's secret"
        time.sleep(1)
    assert on_vm(f"curl -fsS -o /dev/null http://127.0.0.1/{app}/db").returncode == 0


def check_domain_on_host(engine, app: str, tmp_path: Path) -> None:
    """`lab deploy --domain` against Pebble on this machine (never a real CA): a certificate by HTTP-01 through
    the host's nginx, its chain to Pebble's root, the domain's checks of `lab verify --ca`, certbot.timer on,
    then a renewal by certbot.timer's own service under HTTPS keep-alive load to the domain: the new certificate
    served, no failed request; the key in no log. The bad ACME inputs are test_acme.py's (opt-in)."""
    https = vmcommands.https_port(HTTP_PORT)
    network = next(iter(engine.containers.get(VM).attrs["NetworkSettings"]["Networks"].values()))
    with pebble.running(tmp_path / "pebble", network, PEBBLE_PORTS) as ca:
        started = time.monotonic()
        result = deploy(*ca.acme_args(DOMAIN))
        took = time.monotonic() - started
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        issuance = pebble.task_seconds(ROOT / ".lab" / "deploy" / VM, "ACME: get a certificate")
        print(f"lab deploy --vm {VM} --domain {DOMAIN} (Pebble): {took:.0f}s, ACME issuance {issuance:.1f}s")
        assert f"https://{DOMAIN}/" in result.stdout
        cert = pebble.served(ca.root_file, https, DOMAIN)  # its chain leads to Pebble's root
        assert tls.sans(cert) == {DOMAIN}
        assert on_vm("systemctl is-enabled certbot.timer && systemctl is-active certbot.timer").returncode == 0

        verify = ("verify", app, "--vm", VM, "--ca", str(ca.root_file), "--no-infra", "--keep-database", "--json")
        checked = run_lab(*verify, env=vm_env())
        assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]
        results = json.loads(checked.stdout)["results"]
        domain_checks = {r["check"]: r["status"] for r in results if DOMAIN in r["url"]}
        wanted = {f"tls: {name}": "pass" for name in pebble.DOMAIN_CHECKS}
        assert wanted.items() <= domain_checks.items(), domain_checks

        paths = [f"/{app}/plaintext", "/_lab/plaintext"]
        pebble.check_renewal_under_load(on_vm, ca.root_file, https, DOMAIN, paths, cert)
        pebble.check_key_in_no_log(on_vm, DOMAIN, ROOT / ".lab" / "deploy" / VM)


def check_https_on_host(app: str) -> None:
    """443 serves the lab CA's certificate for the address deployed to; its key is the secrets' group's only."""
    context = ssl.create_default_context(cafile=str(ROOT / ".lab" / "ca" / "ca.pem"))
    url = f"https://127.0.0.1:{vmcommands.https_port(HTTP_PORT)}/{app}/json"
    with urllib.request.urlopen(url, context=context, timeout=30) as response:
        assert json.loads(response.read()) == {"message": "Hello, World!"}
        assert response.headers.get("Strict-Transport-Security") is None  # not a real certificate
    mode = on_vm("sudo stat -c '%a %U %g' /opt/framework-lab/tls/server.key /opt/framework-lab/tls")
    assert mode.stdout.split("\n")[:2] == ["640 root 10001", "750 root 10001"], mode.stdout + mode.stderr


@contextlib.contextmanager
def step(name: str):
    """Prints how long a step of the end to end took (shown by `pytest -rP`, as CI runs it)."""
    started = time.monotonic()
    try:
        yield
    finally:
        print(f"deploy e2e, {name}: {time.monotonic() - started:.0f} s")


def test_deploy_verify_redeploy_change_undeploy(vm, engine, apps, tmp_path):
    with step("first deploy"):
        first = deploy("--backup")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"no backup: {VM} has no lab yet" in first.stderr
    plain = re.search(r"the same with plain Ansible: (.+)", first.stdout + first.stderr)
    assert plain, "lab deploy prints the plain ansible-playbook command"
    assert (ROOT / shlex.split(plain.group(1))[2]).is_file(), f"{plain.group(1)}: its inventory does not exist"
    verify = run_lab("verify", "--vm", VM, env=vm_env())
    assert verify.returncode == 0, verify_failures(verify)
    assert " 0 failed" in verify.stdout
    assert re.search(r"https\s+│\s+tls\s+│\s+pass", verify.stdout), verify.stdout[-4000:]  # the TLS checks ran
    check_https_on_host(apps[0])
    with step("bench"):
        check_bench_on_host(apps[0], tmp_path)
    with step("backup and restore"):
        check_backup_and_restore_on_host(engine, apps[0])
    with step("changed host key"):
        check_changed_host_key_is_refused(engine)

    before = vm_containers()
    with step("second deploy"):
        again = deploy("--backup")  # the backup changes nothing on the host
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"backup of hello_world on {VM}: {BACKUPS}" in again.stderr
    assert ", 0 changed," in again.stdout, again.stdout
    assert "shipped nothing" in again.stdout
    assert vm_containers() == before

    # One framework's code changes: only its image is shipped and only its container restarts.
    app = apps[0]
    home = tmp_path / "home"
    for folder in ("lab", "stacks", "compose", "playbooks", "tests"):
        shutil.copytree(ROOT / folder, home / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".lab", home / ".lab", ignore=shutil.ignore_patterns("deploy", "vm"))
    shutil.copytree(ROOT / ".lab" / "vm" / VM, home / ".lab" / "vm" / VM)
    changed = next((home / "stacks" / app / "app").rglob("*.py"))
    changed.write_text(changed.read_text() + "\n# a change shipped on its own\n")
    # Under load: 64 keep-alive connections through the host's nginx, to the changed app and another.
    paths = [f"/{app}/plaintext", f"/{app}/db", f"/{apps[-1]}/plaintext", f"/{apps[-1]}/db"]
    try:
        with CountedLoad(HTTP_PORT, paths, **SWAP_LOAD) as load, step("changed app under load"):
            result = deploy(env=vm_env(LAB_HOME=str(home)))
        assert result.returncode == 0, result.stderr[-3000:]
        shipped = re.findall(r"shipped (\S+): (\d+) of (\d+) layers, (\d+) bytes", result.stdout)
        after = vm_containers()
        # The changed app's container was swapped for a new one (-2); nothing else restarted.
        assert {name for name in after.keys() & before.keys() if after[name] != before[name]} == set()
        assert before.keys() - after.keys() == {f"framework-lab-{app}-1"}
        assert after.keys() - before.keys() == {f"framework-lab-{app}-2"}
        tallies = load.tallies()
        report = {p: (t.ok, t.failed, t.reasons(), f"slowest {t.slowest:.1f}s") for p, t in tallies.items()}
        print(f"deploy of a changed {app} under load: {report}")
        assert all(t.ok > 0 for t in tallies.values()), report
        assert sum(t.failed for t in tallies.values()) == 0, report
    finally:
        run_lab("build", app)  # the checkout's own image again
    assert [image for image, *_ in shipped] == [f"framework-lab/{app}:latest"], result.stdout
    (_, sent, total, size) = shipped[0]
    assert int(size) < 10 * 2**20, f"{size} bytes for one changed file"
    assert int(sent) < int(total)  # the layers the host had were not sent again

    with step("rollback"):
        check_rollback_on_host(app, apps[-1])
    with step("root@ twice"):
        check_root_deploy(vm, engine, app)
    if VARIANTS:
        with step("SSH dropped while shipping"):
            check_ssh_dropped_while_shipping(engine, apps[-1])
    with step("--domain with Pebble"):
        check_domain_on_host(engine, apps[0], tmp_path)
    if VARIANTS:
        with step("second controller"):
            check_second_controller(engine, apps[0], tmp_path)
    else:
        print("deploy e2e: SSH dropped while shipping, second controller: left out (LAB_TEST_VARIANTS=1 runs them)")

    with step("undeploy"):
        result = run_lab("undeploy", "--vm", VM, env=vm_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert vm_containers() == {}
    assert on_vm("sudo docker image ls --quiet --filter 'reference=framework-lab/*'").stdout.strip() == ""
    # Ansible's artifacts, ssh_configs, bench results, logs: no token anywhere.
    assert files_with_tokens(ROOT / ".lab", home / ".lab", tmp_path) == []
