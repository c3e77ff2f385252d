"""`lab deploy --domain` with its bad inputs, for real (opt-in: LAB_TEST_ACME=1), against Pebble
(tests/integration/pebble.py), never a real CA. The deploy e2e (test_deploy.py, in `make test`) issues and
renews on its stand-in; this one runs, on a stand-in of its own with one framework: deploy with the domain →
the chain leads to Pebble's root, the domain redirects, HSTS, `lab verify --vm --ca` passes → bad input (a
directory that is not one, one that does not answer, a domain that points elsewhere) fails naming the step,
nginx untouched → a renewal by certbot.timer's own service under counted HTTPS keep-alive load: a new serial
served, no failed request → the key in no log → undeploy. Pebble and challtestsrv are stopped whatever
happens."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from lab import tls
from lab.vm import commands as vmcommands
from tests.integration import pebble as pebble_lib
from tests.integration.conftest import ROOT, remove_standins, run_lab
from tests.integration.pebble import Pebble
from tests.integration.test_deploy import vm_env

pytestmark = [
    pytest.mark.integration,
    # A stand-in VM of its own and a deploy: about 10 minutes on the 2-core CI machines. Without it, CI still
    # issues and renews against Pebble in the deploy e2e (test_deploy.py, check_domain_on_host), runs nginx's
    # certificate swaps (test_acme_nginx.py, no CA) and the option checks (tests/unit/test_acme.py).
    pytest.mark.skipif(os.environ.get("LAB_TEST_ACME") != "1", reason="the ACME deploy e2e is opt-in: LAB_TEST_ACME=1"),
]
VM = "framework-lab-vm-acme"
SSH_PORT, HTTP_PORT = 12342, 18097
HTTPS_PORT = vmcommands.https_port(HTTP_PORT)
DOMAIN = "lab.acme.test"
ELSEWHERE = pebble_lib.ELSEWHERE
PORTS = pebble_lib.Ports(acme=28140, management=28150, dns=28153, challtest=28155)
KNOWN_HOSTS = ROOT / ".lab" / "known_hosts"


def forget_host_key() -> None:
    if KNOWN_HOSTS.exists():
        subprocess.run(["ssh-keygen", "-f", str(KNOWN_HOSTS), "-R", f"[127.0.0.1]:{SSH_PORT}"], capture_output=True)


@pytest.fixture(scope="module")
def vm(engine):
    remove_standins(engine, [VM])
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
        remove_standins(engine, [VM])


@pytest.fixture(scope="module")
def pebble(vm, tmp_path_factory):
    with pebble_lib.running(tmp_path_factory.mktemp("pebble"), vm["network"], PORTS) as server:
        yield server


def deploy(pebble: Pebble, *args: str) -> subprocess.CompletedProcess:
    return run_lab("deploy", "--vm", VM, *pebble.acme_args(DOMAIN), *args, env=vm_env())


def on_vm(command: str) -> subprocess.CompletedProcess:
    return run_lab("vm", "ssh", "--name", VM, command, env=vm_env())


def served(root: Path) -> x509.Certificate:
    return pebble_lib.served(root, HTTPS_PORT, DOMAIN)


def task_seconds(name_start: str) -> float:
    return pebble_lib.task_seconds(ROOT / ".lab" / "deploy" / VM, name_start)


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
    nowhere = f"https://{pebble.gateway}:{PORTS.acme}/no-such-directory"
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
        assert served(pebble.root_file).serial_number == cert.serial_number
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

    root = pebble.root_file
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
    wanted = {f"tls: {name}": "pass" for name in pebble_lib.DOMAIN_CHECKS}
    assert wanted.items() <= domain_checks.items(), domain_checks
    # Against another CA (the lab's), the domain's chain fails: the check can fail.
    wrong = verify_domain(app, ROOT / ".lab" / "ca" / "ca.pem")
    failed = [r for r in json.loads(wrong.stdout)["results"] if r["status"] == "fail"]
    assert wrong.returncode == 1 and [(r["check"], DOMAIN in r["url"]) for r in failed] == [("tls: chain", True)], (
        failed
    )

    check_bad_input(pebble, app, cert)

    # A renewal as certbot.timer makes it, under HTTPS keep-alive load to the domain: nginx takes the new
    # certificate without a reload.
    paths = [f"/{app}/plaintext", "/_lab/plaintext"]
    pebble_lib.check_renewal_under_load(on_vm, root, HTTPS_PORT, DOMAIN, paths, cert)

    pebble_lib.check_key_in_no_log(on_vm, DOMAIN, ROOT / ".lab" / "deploy" / VM)

    gone = run_lab("undeploy", "--vm", VM, env=vm_env())
    assert gone.returncode == 0, gone.stderr[-2000:]
    assert on_vm(f"test ! -e /etc/letsencrypt/renewal/{DOMAIN}.conf").returncode == 0
