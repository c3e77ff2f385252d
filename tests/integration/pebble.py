"""Pebble (Debian's RFC 8555 test CA) and pebble-challtestsrv (its DNS) on this machine, for the tests of
`lab deploy --domain` on a stand-in VM: never a real CA.

Pebble listens on the stand-in's Docker gateway only (the VM reaches it there; its HTTPS is a certificate from
a throw-away CA, handed to the deploy with --acme-ca); challtestsrv answers every name with the VM's own
address, so Pebble validates HTTP-01 on the VM's port 80 (its nginx). The deploy e2e (test_deploy.py) issues
and renews through it; the opt-in test_acme.py adds the bad inputs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from lab import tls
from lab.load import CountedLoad

ELSEWHERE = "elsewhere.acme.test"  # challtestsrv answers it with an address where nothing listens


@dataclass(frozen=True)
class Ports:
    acme: int
    management: int
    dns: int
    challtest: int


def ensure_pebble() -> None:
    """scripts/bootstrap installs it; a machine set up before that gets it here (Debian's package)."""
    if shutil.which("pebble") and shutil.which("pebble-challtestsrv"):
        return
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "pebble"], check=True)


class Pebble:
    def __init__(self, folder: Path, gateway: str, vm_address: str, ports: Ports) -> None:
        self.folder, self.gateway, self.vm_address, self.ports = folder, gateway, vm_address, ports
        self.directory = f"https://{gateway}:{ports.acme}/dir"
        self.processes: list[subprocess.Popen] = []
        now = dt.datetime.now(dt.UTC)
        key, cert = tls.new_ca(now, "pebble's listener")
        self.listener_ca = folder / "listener-ca.pem"
        self.listener_ca.write_bytes(tls.cert_pem(cert))
        self.root_file = folder / "root.pem"  # Pebble's root, written once it runs
        server_key, server_cert = tls.issue(tls.Authority(key, cert, self.listener_ca), [gateway, "127.0.0.1"], now)
        (folder / "key.pem").write_bytes(tls.key_pem(server_key))
        (folder / "cert.pem").write_bytes(tls.cert_pem(server_cert))
        config = {
            "pebble": {
                "listenAddress": f"{gateway}:{ports.acme}",  # where the VM reaches it, nowhere else
                "managementListenAddress": f"127.0.0.1:{ports.management}",
                "certificate": str(folder / "cert.pem"),
                "privateKey": str(folder / "key.pem"),
                "httpPort": 80,  # the VM's nginx
                "tlsPort": 443,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (folder / "pebble.json").write_text(json.dumps(config))

    def acme_args(self, domain: str) -> tuple[str, ...]:
        """`lab deploy`'s options for a certificate from this Pebble."""
        return ("--domain", domain, "--acme-directory", self.directory, "--acme-ca", str(self.listener_ca))

    def start(self) -> None:
        dns = f"127.0.0.1:{self.ports.dns}"
        challtest = [
            "pebble-challtestsrv",
            *("-defaultIPv4", self.vm_address, "-defaultIPv6", ""),
            *("-dns01", dns, "-management", f"127.0.0.1:{self.ports.challtest}"),
            *("-http01", "", "-https01", "", "-tlsalpn01", ""),
        ]
        log = (self.folder / "challtestsrv.log").open("w")
        self.processes.append(subprocess.Popen(challtest, stdout=log, stderr=subprocess.STDOUT))
        env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        log = (self.folder / "pebble.log").open("w")
        argv = ["pebble", "-config", str(self.folder / "pebble.json"), "-dnsserver", dns]
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + 30
        while True:
            try:
                self.root_file.write_bytes(self.root())
                break
            except OSError:
                assert time.monotonic() < deadline, (self.folder / "pebble.log").read_text()
                assert all(p.poll() is None for p in self.processes), (self.folder / "pebble.log").read_text()
                time.sleep(0.3)
        # A name that points elsewhere: 127.0.0.2, where no port 80 answers.
        body = json.dumps({"host": f"{ELSEWHERE}.", "addresses": ["127.0.0.2"]}).encode()
        urllib.request.urlopen(f"http://127.0.0.1:{self.ports.challtest}/add-a", data=body, timeout=10).read()

    def root(self) -> bytes:
        """Pebble's root (made anew at each start), from its management API."""
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        url = f"https://127.0.0.1:{self.ports.management}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.read()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def running(folder: Path, network: dict, ports: Ports) -> Iterator[Pebble]:
    """Pebble and challtestsrv for the stand-in on `network` (its container's network settings), stopped
    whatever happens."""
    ensure_pebble()
    folder.mkdir(parents=True, exist_ok=True)
    server = Pebble(folder, network["Gateway"], network["IPAddress"], ports)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        assert all(p.poll() is not None for p in server.processes)


def served(root: Path, port: int, domain: str) -> x509.Certificate:
    """The certificate a fresh handshake for the domain gets (no session reuse), its chain checked against root."""
    context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=domain) as conn,
    ):
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


def task_seconds(deploy_folder: Path, name_start: str) -> float:
    """How long the newest deploy's task took (ansible-runner's events under .lab/deploy/<target>)."""
    runs = sorted((deploy_folder / "artifacts").glob("*"), key=lambda p: p.stat().st_mtime)
    for event in (runs[-1] / "job_events").glob("*.json"):
        data = json.loads(event.read_text())
        if data.get("event") == "runner_on_ok" and data["event_data"].get("task", "").startswith(name_start):
            return float(data["event_data"]["duration"])
    raise AssertionError(f"no task {name_start!r} in {runs[-1]}")


DOMAIN_CHECKS = ("chain", "hostname", "TLS 1.1 refused", "expiry", "HSTS", "HTTP redirects", "ACME path not redirected")


def renew_under_load(
    on_vm: Callable[[str], subprocess.CompletedProcess], root: Path, port: int, domain: str, paths: list[str]
) -> tuple[x509.Certificate, x509.Certificate, float, dict]:
    """A renewal as certbot.timer makes it (its service, the deploy's drop-in pointing certbot at Pebble's CA),
    made due now, under HTTPS keep-alive load to the domain. The certificates served before and after, the
    seconds certbot.service took, and the load's tallies per path."""
    before = served(root, port, domain)
    conf = f"/etc/letsencrypt/renewal/{domain}.conf"
    due = on_vm(f"sudo sed -i '1i renew_before_expiry = 36500 days' {conf}")  # top level, not a section
    assert due.returncode == 0, due.stderr
    context = ssl.create_default_context(cafile=str(root))
    with CountedLoad(port, paths, connections=8, duration=300, tls=context, server_name=domain) as load:
        time.sleep(1)
        started = time.monotonic()
        renewed = on_vm("sudo systemctl start certbot.service")
        seconds = time.monotonic() - started
        assert renewed.returncode == 0, renewed.stderr + on_vm("sudo journalctl -u certbot --no-pager -n 30").stdout
        after = served(root, port, domain)
        time.sleep(2)
    return before, after, seconds, load.tallies()


def check_renewal_under_load(
    on_vm: Callable[[str], subprocess.CompletedProcess],
    root: Path,
    port: int,
    domain: str,
    paths: list[str],
    issued: x509.Certificate,
) -> None:
    """renew_under_load, held to what it promises: the issued certificate was served before, a new one for the
    domain after, every path answered meanwhile and no request failed; the figures printed."""
    old, new, renewal, tallies = renew_under_load(on_vm, root, port, domain, paths)
    report = {p: (t.ok, t.failed, t.reasons()) for p, t in tallies.items()}
    print(f"renewal by certbot.service under HTTPS keep-alive load: {renewal:.1f}s, {report}")
    assert old.serial_number == issued.serial_number
    assert new.serial_number != issued.serial_number and tls.sans(new) == {domain}
    assert all(t.ok > 0 for t in tallies.values()), report
    assert sum(t.failed for t in tallies.values()) == 0, report


def check_key_in_no_log(on_vm: Callable[[str], subprocess.CompletedProcess], domain: str, deploy_folder: Path) -> None:
    """The certificate's key (a line of it) is in no log on the host (nginx's, certbot's, the journal) and in no
    file of the deploy's folder here (Ansible's artifacts)."""
    key_line = on_vm(f"sudo sed -n 3p /etc/letsencrypt/live/{domain}/privkey.pem").stdout.strip()
    assert len(key_line) > 20
    nginx = "$(sudo docker ps --quiet --filter label=com.docker.compose.service=nginx)"
    logs = on_vm(f"sudo docker logs {nginx} 2>&1; sudo sh -c 'cat /var/log/letsencrypt/*'; sudo journalctl")
    assert logs.stdout and key_line not in logs.stdout
    assert subprocess.run(["grep", "-rlF", key_line, str(deploy_folder)]).returncode == 1
