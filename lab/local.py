"""The lab on this machine's Docker engine: build, up, down, ps."""

from __future__ import annotations

import contextlib
import functools
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
from rich.console import Console

from lab import baseimage, builds, commands, composefile, engine, portcheck, releases, rollout, secrets, state, tls
from lab import stacks as stacklib
from lab.errors import Exit, LabError
from lab.run import run
from lab.settings import Settings
from lab.stacks import Stack

NO_CA = "no-ca-bundle"  # an empty stand-in when the host has no CA bundle to hand in
_Method = TypeVar("_Method", bound=Callable[..., Any])


def exclusive(method: _Method) -> _Method:
    """Run a method that changes the lab's files or containers under .lab/lock."""

    @functools.wraps(method)
    def wrapper(self: Lab, *args: Any, **kwargs: Any) -> Any:
        with self.locked():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class Lab:
    settings: Settings
    stacks: list[Stack]
    console: Console
    # {app: server} chosen with `--server` for this command; compose's LAB_<APP>_SERVER, so an app
    # not chosen runs its manifest's default (or what the caller's environment says).
    servers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings, console: Console) -> Lab:
        return cls(settings, stacklib.discover(settings.stacks_dir), console)

    def say(self, message: str) -> None:
        self.console.print(f"[dim]lab:[/] {message}")

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold .lab/lock: one command at a time changes the lab (re-entrant)."""
        return state.locked(self.settings.state_dir, self.settings.lock_timeout, self.say)

    @property
    def base(self) -> Stack:
        return stacklib.one(self.stacks, "base")

    @property
    def database(self) -> Stack:
        return stacklib.one(self.stacks, "database")

    @property
    def proxy(self) -> Stack:
        return stacklib.one(self.stacks, "proxy")

    def ca_bundle(self) -> Path:
        bundle = self.settings.resolved_ca_bundle()
        if bundle:
            return bundle
        empty = self.settings.state_dir / NO_CA
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.touch()
        return empty

    def env(self, base_image: str | None = None) -> dict[str, str]:
        env = commands.compose_env(self.settings, self.ca_bundle(), base_image or self.settings.base_image)
        by_name = {a.name: a for a in stacklib.served(self.stacks)}
        return env | {by_name[name].server_variable: server for name, server in self.servers.items()}

    # -- preparing ---------------------------------------------------------------------------

    @exclusive
    def prepare(self) -> list[str]:
        """Compose file current, secrets present: everything plain compose needs but images.
        Returns the secrets it created."""
        if composefile.write(self.settings, self.stacks):
            self.say(f"regenerated {self.settings.compose_file.relative_to(self.settings.root)} from stacks/")
        names = sorted({n for s in self.stacks for n in s.secrets})
        if created := secrets.ensure(self.settings.secrets_dir, names):
            self.say(f"created secret(s) {', '.join(created)} in {self.settings.secrets_dir}")
        return created + self.ensure_tls()

    def lab_ca(self) -> tls.Authority:
        """The lab CA, made on first use."""
        ca, made = tls.ensure_ca(self.settings.ca_dir)
        if made:
            self.say(f"created the lab CA {ca.path} (`lab ca` says how to trust it)")
        return ca

    def ensure_tls(self) -> list[str]:
        """nginx's certificate for this machine (renewed when due); the TLS secrets' names when it
        was made anew."""
        names = tls.local_names(self.settings.bind)
        self.settings.acme_dir.mkdir(parents=True, exist_ok=True)  # nginx's mount: made by us, not by Docker as root
        if reason := tls.ensure_server(self.settings.tls_dir, self.lab_ca(), names):
            self.say(f"made nginx's certificate for {', '.join(names)} ({reason})")
            return list(tls.SECRETS)
        return []

    def ensure_host_tls(self, address: str) -> str:
        """A deploy target's certificate for its address, from the lab CA, in .lab/tls/hosts/<address>/
        (what the lab role installs for nginx on a host without a domain); why it was made, or "".
        Kept by address, so the names one host goes by (--vm, --host) share one certificate."""
        if reason := tls.ensure_server(tls.host_dir(self.settings.tls_dir, address), self.lab_ca(), [address]):
            self.say(f"made a certificate for {address} ({reason})")
        return reason

    def secret_users(self, names: list[str]) -> list[str]:
        """The services that mount any of these secrets (every app mounts the database's too)."""
        db = set(self.database.secrets)
        users = [self.database.name] if db & set(names) else []
        users += [a.name for a in stacklib.served(self.stacks) if ({*a.secrets, *(() if a.bare else db)} & set(names))]
        return users + ([self.proxy.name] if set(tls.SECRETS) & set(names) else [])

    @exclusive
    def build(self, client: docker.DockerClient, apps: list[Stack]) -> list[str]:
        base_image = baseimage.ensure(self.settings, client, self.say)
        layers = [
            ([self.base, self.database, self.proxy], base_image),
            (apps, self.base.image),
        ]
        built = builds.build_stale(self.settings, client, layers, self.env(base_image), self.say)
        if not built:
            self.say("all images are up to date")
        return built

    # -- running -----------------------------------------------------------------------------

    def check_port(self, client: docker.DockerClient) -> None:
        running = engine.lab_containers(client, self.settings.project, all=False)
        ours = {
            binding.get("HostPort")
            for container in running
            if engine.service_of(container) == self.proxy.name
            for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values()
            for binding in bindings or []
            if binding.get("HostIp") == self.settings.bind
        }
        for port, how in ((self.settings.port, "--port, LAB_PORT"), (self.settings.https_port, "LAB_HTTPS_PORT")):
            if str(port) in ours:
                continue  # our own nginx holds it
            if not portcheck.is_free(self.settings.bind, port):
                raise LabError(
                    f"{self.settings.bind}:{port} is already in use",
                    Exit.PORT,
                    hint=f"stop what listens there, or choose another port ({how} or lab.toml)",
                )

    @exclusive
    def up(self, apps: list[Stack]) -> None:
        client = engine.client()
        engine.require_compose()
        self.check_port(client)
        created = self.prepare()
        self.build(client, apps)
        # A secret made anew (the folder was lost, the volume kept): containers that run still see
        # the old file. Recreate every one that mounts it, so all agree again (postgres takes the
        # password from the file at start).
        running = {engine.service_of(c) for c in engine.lab_containers(client, self.settings.project, all=False)}
        if stale := [s for s in self.secret_users(created) if s in running]:
            self.say(f"recreating {', '.join(stale)}: they mount the new secret(s)")
        runner = self.rollout()
        try:
            report = runner.up([a.name for a in apps], recreate=stale)
            record = str(releases.local_record(self.settings))
            if release := rollout.record(runner, record, [a.name for a in apps], *releases.whence(self.settings.root)):
                self.say(f"release {release['id']} recorded (`lab releases`, `lab rollback`)")
        except rollout.RolloutError as error:
            log = error.detail.splitlines()[-rollout.LOG_LINES :]
            raise LabError(
                str(error) + ("\n  its last log lines:" + "".join(f"\n    {line}" for line in log) if log else ""),
                Exit.UNHEALTHY,
                hint="an app whose new container failed still runs its old one; see `lab logs`",
            ) from None
        for service, change in report.replaced.items():
            if "seconds" in change:
                self.say(
                    f"{service}: swapped in {change['seconds']} s (the new container healthy before it got a request)"
                )
        self.wait_routed(apps)

    def rollout(self) -> rollout.Rollout:
        return rollout.Rollout(
            project=self.settings.project,
            file=str(self.settings.compose_file),
            database=self.database.name,
            proxy=self.proxy.name,
            timeout=self.settings.health_timeout,
            say=self.say,
            env=self.env(),
        )

    def wait_routed(self, apps: list[Stack], timeout: float = 30, base_url: str | None = None) -> None:
        """nginx re-reads the running apps every 2 s: wait until it routes all of them (this
        machine's nginx, or the one at base_url)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.nginx_status(base_url)
            if all(status.get(a.name) == "healthy" for a in apps):
                return
            if time.monotonic() > deadline:
                raise LabError(f"nginx does not route every framework yet: {status}", Exit.UNHEALTHY)
            time.sleep(0.5)

    def nginx_status(self, base_url: str | None = None) -> dict[str, str]:
        url = f"{base_url or self.settings.base_url}/_lab/status.json"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return json.load(response)
        except (OSError, ValueError):
            return {}

    def serving(self, client: docker.DockerClient) -> dict[str, str]:
        """The server each running app's container was started with (its LAB_SERVER)."""
        found = {}
        for container in engine.lab_containers(client, self.settings.project, all=False):
            env = dict(e.split("=", 1) for e in container.attrs.get("Config", {}).get("Env") or [] if "=" in e)
            if "LAB_SERVER" in env:
                found[engine.service_of(container)] = env["LAB_SERVER"]
        return found

    def states(self, client: docker.DockerClient) -> dict[str, str]:
        """Each service's health. One Docker still calls "starting" is probed now with its own
        healthcheck (as lab up does): Docker's first check comes up to its interval after the start."""
        runner = self.rollout()
        states = {}
        for container in engine.lab_containers(client, self.settings.project):
            state = engine.health_of(container)
            if state == "starting" and runner.ready(rollout.Container.from_inspect(container.attrs)):
                state = "healthy"
            states[engine.service_of(container)] = state
        return states

    @exclusive
    def down(self, volumes: bool) -> None:
        engine.client()
        engine.require_compose()
        self.prepare()
        run(commands.compose_down(self.settings, volumes), env=self.env(), capture=True)
        if volumes:  # the data is gone, and with it what a rollback could go back to
            rollout.forget(self.rollout(), str(releases.local_record(self.settings)))

    def logs(self, services: list[str], follow: bool, tail: int | None) -> int:
        self.prepare()
        return run(commands.compose_logs(self.settings, services, follow, tail), env=self.env(), check=False).returncode

    def rows(self, client: docker.DockerClient) -> list[dict[str, object]]:
        """One row per app (the frameworks, then the baselines, then the database and nginx): its URL,
        state, versions; for `lab up`, `lab ps` and --json."""
        states = self.states(client)
        serving = self.serving(client)
        rows = []
        for app in stacklib.apps(self.stacks):
            rows.append(
                {
                    "framework": app.name,
                    "title": app.title,
                    "url": f"{self.settings.base_url}{app.prefix}/",
                    "state": states.get(app.name, "stopped"),
                    "version": app.version_of(app.package),
                    "server": _label(app, serving.get(app.name)),
                }
            )
        for app in stacklib.baselines(self.stacks):  # after the frameworks: bare apps, none of them
            rows.append(
                {
                    "framework": app.name,
                    "title": app.title,
                    "url": f"{self.settings.base_url}{app.prefix}/",
                    "state": states.get(app.name, "stopped"),
                    "version": "",
                    "server": _label(app, serving.get(app.name)),
                }
            )
        for stack in (self.database, self.proxy):
            rows.append(
                {
                    "framework": stack.name,
                    "title": stack.title,
                    "url": self.settings.base_url + "/" if stack is self.proxy else "",
                    "state": states.get(stack.name, "stopped"),
                    "version": "",
                    "server": "",
                }
            )
        return rows


def _label(app: Stack, server: str | None) -> str:
    """NAME VERSION of the server an app runs (its default when stopped); a name its manifest
    no longer declares is shown as it is."""
    try:
        return app.server_label(server)
    except LabError:
        return server or ""
