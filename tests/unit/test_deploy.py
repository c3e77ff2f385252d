import configparser
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from lab import commands, ssh
from lab.deploy import ansible, remote, target
from lab.errors import Exit, LabError
from lab.settings import Settings
from lab.vm import commands as vmcommands
from lab.vm import keys

ROOT = Path(__file__).resolve().parents[2]
S = Settings(root=Path("/srv/lab"))


@pytest.mark.parametrize(
    ("spec", "user", "host", "port"),
    [
        ("deploy@203.0.113.10", "deploy", "203.0.113.10", 22),
        ("root@server.example.org:2222", "root", "server.example.org", 2222),
        ("lab@[2001:db8::1]:22", "lab", "[2001:db8::1]", 22),
    ],
)
def test_parse_targets(spec, user, host, port):
    t = target.parse(spec)
    assert (t.user, t.host, t.port, t.key) == (user, host, port, None)
    assert t.url == f"http://{host}"


@pytest.mark.parametrize("spec", ["server", "root@", "@host", "root@host:99999", "root@host:22:22", "Root@host"])
def test_bad_targets_are_usage_errors(spec):
    with pytest.raises(LabError) as error:
        target.parse(spec)
    assert error.value.code == Exit.USAGE


def test_missing_key_is_a_usage_error(tmp_path):
    with pytest.raises(LabError, match="no such file"):
        target.parse("root@host", tmp_path / "nope")


def test_vm_target_from_its_record(tmp_path):
    folder = tmp_path / "vm" / "box"
    folder.mkdir(parents=True)
    facts = {"name": "box", "host": "127.0.0.1", "user": "lab", "ssh_port": 2222, "http_port": 8081, "key": "/k"}
    (folder / "vm.json").write_text(json.dumps(facts))
    t = target.from_vm(tmp_path, "box")
    assert (t.user, t.host, t.port, t.key, t.url, t.inventory_name) == (
        "lab",
        "127.0.0.1",
        2222,
        Path("/k"),
        "http://127.0.0.1:8081",
        "box",
    )
    assert t.pinned  # the lab made it: its host key was pinned before the first contact
    assert t.https_port is None  # a VM recorded before it published 443
    (folder / "vm.json").write_text(json.dumps({**facts, "https_port": 9081}))
    assert target.from_vm(tmp_path, "box").https_port == 9081
    (folder / "vm.json").write_text(json.dumps({**facts, "http_port": 80}))  # a cloud server's record
    assert target.from_vm(tmp_path, "box").https_port == 443
    assert target.parse("deploy@203.0.113.10").https_port == 443
    with pytest.raises(LabError, match="no VM named 'other'"):
        target.from_vm(tmp_path, "other")


def test_inventory_and_runner_arguments():
    t = target.Target("deploy", "203.0.113.10", 2222, Path("/keys/id"))
    kwargs = ansible.runner_kwargs(S, t, "site.yml", ["one"])
    host = kwargs["inventory"]["all"]["children"]["lab"]["hosts"]["203.0.113.10"]
    assert host == {
        "ansible_host": "203.0.113.10",
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new"
        " -o UserKnownHostsFile=/srv/lab/.lab/known_hosts",
        "ansible_ssh_private_key_file": "/keys/id",
    }
    assert kwargs["project_dir"] == "/srv/lab/playbooks" and kwargs["playbook"] == "site.yml"
    assert kwargs["extravars"] == {"lab_root": "/srv/lab", "lab_frameworks": ["one"]}
    assert kwargs["envvars"]["ANSIBLE_CONFIG"] == "/srv/lab/playbooks/ansible.cfg"
    assert kwargs["private_data_dir"] == "/srv/lab/.lab/deploy/203.0.113.10"
    assert ansible.plain_command(S, t, "site.yml", []) == [
        "ansible-playbook",
        "-i",
        "/srv/lab/.lab/deploy/203.0.113.10/inventory/hosts.json",  # what ansible-runner writes
        "playbooks/site.yml",
        "-e",
        '{"lab_root": "/srv/lab", "lab_frameworks": []}',
    ]


def test_a_deploy_hands_the_release_its_commit_computed_once():
    """The commit (and who deploys) a host's release records is lab.releases.whence's, passed as extra
    variables, also in the printed ansible-playbook command; the role computes none of its own and records
    "unknown" for a plain run that does not pass them."""
    t = target.Target("deploy", "203.0.113.10")
    kwargs = ansible.runner_kwargs(S, t, "site.yml", [], ("v1-3-gabc123", "me@here"))
    assert kwargs["extravars"] == {
        "lab_root": "/srv/lab", "lab_frameworks": [], "lab_release_commit": "v1-3-gabc123", "lab_release_by": "me@here",
    }  # fmt: skip
    assert json.loads(ansible.plain_command(S, t, "site.yml", [], ("c", "b"))[-1])["lab_release_commit"] == "c"
    defaults = yaml.safe_load((ROOT / "playbooks" / "roles" / "lab" / "defaults" / "main.yml").read_text())
    assert (defaults["lab_release_commit"], defaults["lab_release_by"]) == ("unknown", "unknown")
    for path in (ROOT / "playbooks").rglob("*.yml"):
        assert "describe" not in path.read_text(), f"{path} computes a commit of its own"


def test_one_host_key_policy_for_every_target():
    """A machine the lab made shows its pinned key or is refused, even at first contact; another host's key
    is learned at first contact and a changed one refused. Never `no`, never /dev/null."""
    made = target.Target("lab", "127.0.0.1", 2222, name="vm", pinned=True)
    assert made.ssh_options(Path("/kh")) == ["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/kh"]
    other = target.Target("root", "203.0.113.10", 22)
    assert other.ssh_options(Path("/kh")) == ["-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=/kh"]
    text = remote.ssh_config(made, Path("/kh"))
    assert "  StrictHostKeyChecking yes" in text and "  UserKnownHostsFile /kh" in text
    assert vmcommands.ssh(Path("/k"), 2222, "lab", known_hosts=Path("/kh"))[5:9] == made.ssh_options(Path("/kh"))
    assert ssh.known_hosts_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"
    assert ssh.known_hosts_name("[2001:db8::1]", 22) == "2001:db8::1"


def test_ansible_checks_host_keys():
    """ansible.cfg's host_key_checking=False made Ansible put StrictHostKeyChecking=no before the lab's
    options (ssh takes the first), and ansible-runner turns it off unless its environment says otherwise."""
    config = configparser.ConfigParser()
    config.read(ROOT / "playbooks" / "ansible.cfg")
    assert config.getboolean("defaults", "host_key_checking") is True
    t = target.Target("deploy", "203.0.113.10", 22)
    assert ansible.runner_kwargs(S, t, "site.yml", [])["envvars"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"


FAKE_TOKENS = {"HCLOUD_TOKEN": "fl-fake-hcloud-token-1234", "DIGITALOCEAN_TOKEN": "fl-fake-do-token-5678"}


def test_ansible_gets_only_the_environment_it_needs(tmp_path):
    """ansible-runner records the environment it runs Ansible with in artifacts/<run>/command: the caller's
    cloud tokens (or anything else) must not be in it."""
    import ansible_runner.config.runner

    caller = {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "SSH_AUTH_SOCK": "/tmp/a", **FAKE_TOKENS}
    caller["AWS_SECRET_ACCESS_KEY"] = "fl-fake-aws"
    env = ansible.environment(caller, python="/venv/bin/python")
    assert env == {"PATH": "/venv/bin:/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "SSH_AUTH_SOCK": "/tmp/a"}

    kwargs = ansible.runner_kwargs(Settings(root=tmp_path), target.Target("deploy", "web1"), "site.yml", [])
    config_kwargs = {k: v for k, v in kwargs.items() if k not in ("inventory", "quiet", "rotate_artifacts")}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**caller}.items():
            patch.setenv(name, value)
        with ansible.only_environment(env):
            config = ansible_runner.config.runner.RunnerConfig(**config_kwargs)
            config.prepare()
        assert os.environ["HCLOUD_TOKEN"] == FAKE_TOKENS["HCLOUD_TOKEN"]  # the caller's environment is back
    recorded = json.dumps(config.env)
    for secret in [*FAKE_TOKENS.values(), "fl-fake-aws"]:
        assert secret not in recorded
    assert config.env["ANSIBLE_CONFIG"] == str(tmp_path / "playbooks" / "ansible.cfg")
    assert config.env["PATH"].startswith("/venv/bin:")


def render_base_template(name: str, **variables) -> str:
    """A base role template rendered with plain jinja2, with the role's defaults (the Ansible filters and
    tests the defaults use, done the same way)."""
    import re

    import jinja2
    import yaml

    role = ROOT / "playbooks" / "roles" / "base"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.tests["match"] = lambda value, pattern: re.match(pattern, value) is not None
    env.filters["regex_replace"] = lambda value, pattern, new: re.sub(pattern, new, value)
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    context = {"ansible_managed": "managed", **variables}
    for key in ("base_allowed_tcp_ports", "base_ssh_ports", "base_swarm_peers"):
        value = defaults.get(key)
        if key not in context:
            context[key] = yaml.safe_load(env.from_string(value).render(context)) if isinstance(value, str) else value
    return env.from_string((role / "templates" / name).read_text()).render(context)


def test_firewall_keeps_the_port_sshd_listens_on():
    """sshd on 2222 (the port the deploy came in on): the firewall lets in 2222, HTTP and HTTPS."""
    sshd = SimpleNamespace(stdout_lines=["port 2222", "addressfamily any", "permitrootlogin no"])
    rules = render_base_template("nftables.conf.j2", base_sshd_settings=sshd)
    assert "tcp dport { 2222, 80, 443 } accept" in rules
    assert " 22," not in rules
    two = SimpleNamespace(stdout_lines=["port 22", "port 2222"])
    assert "tcp dport { 22, 2222, 80, 443 } accept" in render_base_template("nftables.conf.j2", base_sshd_settings=two)


def test_ssh_config_and_testinfra_hosts():
    t = target.Target("deploy", "203.0.113.10", 2222, Path("/keys/id"), name="web")
    text = remote.ssh_config(t, Path("/kh"))
    assert text.splitlines()[:4] == ["Host web", "  HostName 203.0.113.10", "  Port 2222", "  User deploy"]
    assert "  IdentityFile /keys/id" in text and "  StrictHostKeyChecking accept-new" in text
    assert remote.testinfra_hosts(t, Path("/c")) == "ssh://web?ssh_config=/c&sudo=true"


def test_remote_infra_tests_check_the_deployed_host():
    argv = commands.infra_tests(S, "python", ["a"], "ssh://web?sudo=true", None, ("0.0.0.0", 80, 443), deployed=True)
    assert argv[argv.index("--lab-bind") + 1] == "0.0.0.0" and argv[argv.index("--lab-port") + 1] == "80"
    assert argv[argv.index("--lab-https-port") + 1] == "443"
    assert "--lab-deployed" in argv


def test_resolve_target_from_host_or_vm(tmp_path):
    assert target.resolve(tmp_path, None, None, None, required=False) is None
    assert target.resolve(tmp_path, "deploy@web1", None, None).host == "web1"
    for host, key, vm, message in (
        ("deploy@web1", None, "vm1", "not both"),
        (None, tmp_path / "key", "vm1", "--key goes with --host"),
        (None, None, None, "where to?"),
        (None, None, "nosuch", "no VM named 'nosuch'"),
    ):
        with pytest.raises(LabError) as error:
            target.resolve(tmp_path, host, key, vm)
        assert message in error.value.message
        assert error.value.code == Exit.USAGE


def test_vm_alone_means_the_local_stand_in():
    from lab.options import default_vm_name
    from lab.vm.machine import NAME

    assert default_vm_name(["bench", "--vm", "--duration", "2"]) == ["bench", "--vm", NAME, "--duration", "2"]
    assert default_vm_name(["deploy", "--vm"]) == ["deploy", "--vm", NAME]
    assert default_vm_name(["deploy", "--vm", "web1"]) == ["deploy", "--vm", "web1"]


# -- host keys -------------------------------------------------------------------------------------


def test_pinning_a_host_key_leaves_only_that_key(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAAold\nother.example ssh-ed25519 AAAAother\n")
    keys.pin_host_key(known, "127.0.0.1", 2222, "ssh-ed25519 AAAAnew vm host key")
    keys.pin_host_key(known, "127.0.0.1", 2222, "ssh-ed25519 AAAAnewer vm host key")
    assert sorted(known.read_text().splitlines()) == [
        "[127.0.0.1]:2222 ssh-ed25519 AAAAnewer",
        "other.example ssh-ed25519 AAAAother",
    ]


def test_a_host_key_made_for_a_machine(tmp_path):
    made = keys.make_host_key("vm host key")
    assert made.private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert made.public.startswith("ssh-ed25519 ") and made.public.endswith(" vm host key")
    assert made != keys.make_host_key("vm host key")


CHANGED = """@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Offending ED25519 key in /srv/lab/.lab/known_hosts:3
Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.
Host key verification failed.
"""


def test_a_changed_host_key_is_one_clear_error():
    known = Path("/srv/lab/.lab/known_hosts")
    error = ssh.host_key_refusal(CHANGED, "lab@vm", "127.0.0.1", 2222, known)
    assert error is not None and error.code == Exit.FAILED
    assert "lab@vm" in error.message and "[127.0.0.1]:2222" in error.message and "refusing" in error.message
    assert "line 3 of /srv/lab/.lab/known_hosts" in error.hint
    assert "ssh-keygen -f /srv/lab/.lab/known_hosts -R '[127.0.0.1]:2222'" in error.hint
    unknown = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
    assert "no host key" in ssh.host_key_refusal(unknown, "vm", "127.0.0.1", 2222, known).message
    assert ssh.host_key_refusal("lab@127.0.0.1: Permission denied (publickey).", "vm", "h", 22, known) is None
