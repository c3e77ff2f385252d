"""`lab deploy --domain` for real (opt-in: LAB_TEST_ACME=1), against Pebble (Debian's ACME test CA), never a real CA.

Pebble listens on the stand-in VM's Docker gateway (the VM reaches it there; its HTTPS is a certificate from a
throw-away CA, handed to the deploy with --acme-ca), its DNS is pebble-challtestsrv, which answers the test
domain with the VM's own address, and it validates HTTP-01 on the VM's port 80 (its nginx). One module VM with
one framework: deploy with the domain → the chain leads to Pebble's root (from its management API), the
domain redirects, HSTS, `lab verify --vm --ca` passes → bad input (a directory that is not one, one that
does not answer, a domain that points elsewhere) fails naming the step, nginx untouched → a renewal by
certbot.timer's own service under counted HTTPS keep-alive load: a new serial served, no failed request
→ undeploy. Pebble and challtestsrv are stopped whatever happens."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from lab import tls
from lab.load import CountedLoad
from lab.vm import commands as vmcommands
from tests.integration.conftest import ROOT, run_lab
from tests.integration.test_deploy import vm_env

pytestmark = [
    pytest.mark.integration,
    # A stand-in VM of its own and a deploy: about 10 minutes on the 2-core CI machines. Without it, CI still
    # runs the ACME role's parts against Pebble (tests/integration/test_acme_nginx.py) and tests/unit/test_acme.py.
    pytest.mark.skipif(os.environ.get("LAB_TEST_ACME") != "1", reason="the ACME deploy e2e is opt-in: LAB_TEST_ACME=1"),
]
VM = "framework-lab-vm-acme"
SSH_PORT, HTTP_PORT = 12342, 18097
HTTPS_PORT = vmcommands.https_port(HTTP_PORT)
DOMAIN = "lab.acme.test"
ELSEWHERE = "elsewhere.acme.test"  # challtestsrv answers it with an address where nothing listens
ACME_PORT, MANAGEMENT_PORT, DNS_PORT, CHALLTEST_PORT = 28140, 28150, 28153, 28155
KNOWN_HOSTS = ROOT / ".lab" / "known_hosts"


def ensure_pebble() -> None:
    """scripts/bootstrap installs it; a machine set up before that gets it here (Debian's package)."""
    if shutil.which("pebble") and shutil.which("pebble-challtestsrv"):
        return
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "pebble"], check=True)


def forget_host_key() -> None:
    if KNOWN_HOSTS.exists():
        subprocess.run(["ssh-keygen", "-f", str(KNOWN_HOSTS), "-R", f"[127.0.0.1]:{SSH_PORT}"], capture_output=True)


@pytest.fixture(scope="module")
def vm(engine):
    forget_host_key()
    try:
        ports = ("--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT))
        result = run_lab("vm", "up", "--name", VM, *ports, env=vm_env())
        assert result.returncode == 0, result.stderr
        container = engine.containers.get(VM)
        network = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))
        yield {**json.loads((ROOT / ".lab" / "vm" / VM / "vm.json").read_text()), "network": network}
    finally:
        run_lab("vm", "down", "--name", VM, env=vm_env())
        forget_host_key()
        shutil.rmtree(ROOT / ".lab" / "deploy" / VM, ignore_errors=True)
        for left in engine.containers.list(all=True, filters={"label": f"org.framework-lab.vm={VM}"}):
            left.remove(force=True, v=True)


class Pebble:
    def __init__(self, folder: Path, gateway: str, vm_address: str) -> None:
        self.folder, self.gateway, self.vm_address = folder, gateway, vm_address
        self.directory = f"https://{gateway}:{ACME_PORT}/dir"
        self.processes: list[subprocess.Popen] = []
        now = dt.datetime.now(dt.UTC)
        key, cert = tls.new_ca(now, "pebble's listener")
        self.listener_ca = folder / "listener-ca.pem"
        self.listener_ca.write_bytes(tls.cert_pem(cert))
        server_key, server_cert = tls.issue(tls.Authority(key, cert, self.listener_ca), [gateway, "127.0.0.1"], now)
        (folder / "key.pem").write_bytes(tls.key_pem(server_key))
        (folder / "cert.pem").write_bytes(tls.cert_pem(server_cert))
        config = {
            "pebble": {
                "listenAddress": f"{gateway}:{ACME_PORT}",  # where the VM reaches it, nowhere else
                "managementListenAddress": f"127.0.0.1:{MANAGEMENT_PORT}",
                "certificate": str(folder / "cert.pem"),
                "privateKey": str(folder / "key.pem"),
                "httpPort": 80,  # the VM's nginx
                "tlsPort": 443,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (folder / "pebble.json").write_text(json.dumps(config))

    def start(self) -> None:
        log = (self.folder / "challtestsrv.log").open("w")
        self.processes.append(
            subprocess.Popen(
                [
                    "pebble-challtestsrv",
                    "-defaultIPv4",
                    self.vm_address,
                    "-defaultIPv6",
                    "",
                    "-dns01",
                    f"127.0.0.1:{DNS_PORT}",
                    "-management",
                    f"127.0.0.1:{CHALLTEST_PORT}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        log = (self.folder / "pebble.log").open("w")
        argv = ["pebble", "-config", str(self.folder / "pebble.json"), "-dnsserver", f"127.0.0.1:{DNS_PORT}"]
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + 30
        while True:
            try:
                self.root()
                break
            except OSError:
                assert time.monotonic() < deadline, (self.folder / "pebble.log").read_text()
                assert all(p.poll() is None for p in self.processes), (self.folder / "pebble.log").read_text()
                time.sleep(0.3)
        # A name that points elsewhere: 127.0.0.2, where no port 80 answers.
        body = json.dumps({"host": f"{ELSEWHERE}.", "addresses": ["127.0.0.2"]}).encode()
        urllib.request.urlopen(f"http://127.0.0.1:{CHALLTEST_PORT}/add-a", data=body, timeout=10).read()

    def root(self) -> bytes:
        """Pebble's root (made anew at each start), from its management API."""
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        url = f"https://127.0.0.1:{MANAGEMENT_PORT}/roots/0"
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


@pytest.fixture(scope="module")
def pebble(vm, tmp_path_factory):
    ensure_pebble()
    network = vm["network"]
    server = Pebble(tmp_path_factory.mktemp("pebble"), network["Gateway"], network["IPAddress"])
    try:
        server.start()
        root = server.folder / "root.pem"
        root.write_bytes(server.root())
        server.root_file = root  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()
        assert all(p.poll() is not None for p in server.processes)


def deploy(pebble: Pebble, *args: str, domain: str = DOMAIN) -> subprocess.CompletedProcess:
    acme = ("--domain", domain, "--acme-directory", pebble.directory, "--acme-ca", str(pebble.listener_ca))
    return run_lab("deploy", "--vm", VM, *acme, *args, env=vm_env())


def on_vm(command: str) -> subprocess.CompletedProcess:
    return run_lab("vm", "ssh", "--name", VM, command, env=vm_env())


def served(root: Path) -> x509.Certificate:
    """The certificate a fresh handshake for the domain gets (no session reuse), its chain checked against root."""
    context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=DOMAIN) as conn,
    ):
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


def task_seconds(name_start: str) -> float:
    """How long the newest deploy's task took (ansible-runner's events)."""
    runs = sorted((ROOT / ".lab" / "deploy" / VM / "artifacts").glob("*"), key=lambda p: p.stat().st_mtime)
    for event in (runs[-1] / "job_events").glob("*.json"):
        data = json.loads(event.read_text())
        if data.get("event") == "runner_on_ok" and data["event_data"].get("task", "").startswith(name_start):
            return float(data["event_data"]["duration"])
    raise AssertionError(f"no task {name_start!r} in {runs[-1]}")


def nginx_container() -> str:
    return on_vm(
        "sudo docker ps --filter label=com.docker.compose.service=nginx --format '{{.ID}} {{.Status}}'"
    ).stdout.split()[0]


def verify_domain(app: str, ca: Path) -> subprocess.CompletedProcess:
    return run_lab(
        "verify", app, "--vm", VM, "--ca", str(ca), "--no-infra", "--keep-database", "--json", env=vm_env()
    )  # fmt: skip


def check_bad_input(pebble: Pebble, app: str, cert: x509.Certificate) -> None:
    """Each refused naming the step; nginx the same container, the same certificate, still redirecting."""
    nginx = nginx_container()
    nowhere = f"https://{pebble.gateway}:{ACME_PORT}/no-such-directory"
    cases = [
        (("--acme-directory", nowhere), DOMAIN, "not an ACME directory"),
        (("--acme-directory", "https://127.0.0.1:1/directory"), DOMAIN, "ACME directory https://127.0.0.1:1/directory"),
        ((), ELSEWHERE, f"issued no certificate for {ELSEWHERE}"),
    ]  # fmt: skip
    for args, domain, expected in cases:
        acme = ("--domain", domain, "--acme-ca", str(pebble.listener_ca))
        if not args:
            args = ("--acme-directory", pebble.directory)
        result = run_lab("deploy", app, "--vm", VM, *acme, *args, env=vm_env())
        message = " ".join(result.stderr.split())
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert "ACME" in message and expected in message, message[-2000:]
        assert nginx_container() == nginx
        assert served(pebble.root_file).serial_number == cert.serial_number  # type: ignore[attr-defined]
    # The record says what the last good deploy promised.
    assert json.loads((ROOT / ".lab" / "deploy" / VM / "acme.json").read_text())["domain"] == DOMAIN


def test_domain_deploy_issue_verify_renew(vm, pebble, apps, engine):
    app = apps[0]
    started = time.monotonic()
    first = deploy(pebble, app)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    issuance = task_seconds("ACME: get a certificate")
    print(f"lab deploy {app} --vm {VM} --domain {DOMAIN} (Pebble): {took:.0f}s, ACME issuance {issuance:.1f}s")
    assert f"https://{DOMAIN}/" in first.stdout

    root = pebble.root_file  # type: ignore[attr-defined]
    cert = served(root)  # the chain leads to Pebble's root
    assert tls.sans(cert) == {DOMAIN}
    # The address still gets the lab CA's certificate (no SNI), without HSTS.
    lab_ca = ssl.create_default_context(cafile=str(ROOT / ".lab" / "ca" / "ca.pem"))
    with urllib.request.urlopen(f"https://127.0.0.1:{HTTPS_PORT}/{app}/json", context=lab_ca, timeout=10) as answer:
        assert answer.headers.get("Strict-Transport-Security") is None

    mode = on_vm("sudo stat -c '%a %U %g' /opt/framework-lab/acme/live/cert.pem").stdout.split()
    assert mode == ["640", "root", "10001"], mode
    assert on_vm("systemctl is-enabled certbot.timer && systemctl is-active certbot.timer").returncode == 0

    checked = verify_domain(app, root)
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]
    domain_checks = {r["check"]: r["status"] for r in json.loads(checked.stdout)["results"] if DOMAIN in r["url"]}
    wanted = ("chain", "hostname", "TLS 1.1 refused", "expiry", "HSTS", "HTTP redirects", "ACME path not redirected")
    assert {f"tls: {name}": "pass" for name in wanted}.items() <= domain_checks.items(), domain_checks
    # Against another CA (the lab's), the domain's chain fails: the check can fail.
    wrong = verify_domain(app, ROOT / ".lab" / "ca" / "ca.pem")
    failed = [r for r in json.loads(wrong.stdout)["results"] if r["status"] == "fail"]
    assert wrong.returncode == 1 and [(r["check"], DOMAIN in r["url"]) for r in failed] == [("tls: chain", True)], (
        failed
    )

    check_bad_input(pebble, app, cert)

    # A renewal as certbot.timer makes it (its service, our drop-in pointing certbot at Pebble's CA), made due
    # now, under HTTPS keep-alive load to the domain: nginx takes the new certificate without a reload.
    conf = f"/etc/letsencrypt/renewal/{DOMAIN}.conf"
    assert (
        on_vm(f"sudo sed -i '1i renew_before_expiry = 36500 days' {conf}").returncode == 0
    )  # top level, not a section
    context = ssl.create_default_context(cafile=str(root))
    paths = [f"/{app}/plaintext", "/_lab/plaintext"]
    with CountedLoad(HTTPS_PORT, paths, connections=8, duration=300, tls=context, server_name=DOMAIN) as load:
        time.sleep(1)
        started = time.monotonic()
        renewed = on_vm("sudo systemctl start certbot.service")
        renewal = time.monotonic() - started
        assert renewed.returncode == 0, renewed.stderr + on_vm("sudo journalctl -u certbot --no-pager -n 30").stdout
        new = served(root)
        time.sleep(2)
    tallies = load.tallies()
    report = {p: (t.ok, t.failed, t.reasons()) for p, t in tallies.items()}
    print(f"renewal by certbot.service under HTTPS keep-alive load: {renewal:.1f}s, {report}")
    assert new.serial_number != cert.serial_number and tls.sans(new) == {DOMAIN}
    assert all(t.ok > 0 for t in tallies.values()), report
    assert sum(t.failed for t in tallies.values()) == 0, report

    # The key is in no log and on no command line.
    key_line = on_vm(f"sudo sed -n 3p /etc/letsencrypt/live/{DOMAIN}/privkey.pem").stdout.strip()
    assert len(key_line) > 20
    logs = on_vm(f"sudo docker logs {nginx_container()} 2>&1; sudo sh -c 'cat /var/log/letsencrypt/*'; sudo journalctl")
    assert key_line not in logs.stdout
    assert subprocess.run(["grep", "-rlF", key_line, str(ROOT / ".lab" / "deploy" / VM)]).returncode == 1

    gone = run_lab("undeploy", "--vm", VM, env=vm_env())
    assert gone.returncode == 0, gone.stderr[-2000:]
    assert on_vm(f"test ! -e /etc/letsencrypt/renewal/{DOMAIN}.conf").returncode == 0
