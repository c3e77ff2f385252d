"""Start the lab's containers, and replace an app's container without a failed request.

A changed app is not recreated in place (compose stops the old container, then starts the new
one: seconds of 503s). Instead the new container starts beside the old one while nginx is
pinned to the old; once the new one passes its own healthcheck nginx is pinned to it (no
reload: see stacks/nginx/render-upstreams), the old one gets `drain` seconds to finish what it
has, and is removed. A new container that never becomes healthy is removed again; the old one
kept serving all along.

Readiness is probed here, by running each image's own HEALTHCHECK command in its container
as soon as it starts, rather than waiting for Docker's next healthcheck interval.

Standard library only, and nothing from the rest of `lab`: `lab up` imports it, and the deploy
role runs this same file on each host (`python3 rollout.py up …`), so both places swap alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

PROBE_INTERVAL = 0.25  # seconds between two probes of a starting container
PROBE_TIMEOUT = 10  # seconds one probe may take (a loaded or emulated host is slow)
STOP_TIMEOUT = 30  # seconds an old container has to exit after SIGTERM
LOG_LINES = 20  # lines of a failed container's log shown
KEEP = 3  # images kept per framework for rollbacks (the newest distinct ones)


class RolloutError(Exception):
    """A step failed; `detail` holds what helps (a container's last log lines)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


# -- argv (pure) -----------------------------------------------------------------------------


def compose(project: str, file: str, *args: str) -> list[str]:
    return ["docker", "compose", "--project-name", project, "--file", file, *args]


def compose_up(project: str, file: str, services: Sequence[str], recreate: bool = False) -> list[str]:
    # --no-build: the driver builds (in order, only what is stale) before it starts anything.
    # --no-deps: the order (and the wait for the database) is ours, not depends_on's.
    # --force-recreate: compose sees no change when only a secret file's content changed.
    return compose(
        project, file, "up", "--detach", "--no-build", "--pull", "never", "--no-deps",
        *(["--force-recreate"] if recreate else []), *services,
    )  # fmt: skip


def compose_scale(project: str, file: str, service: str, count: int) -> list[str]:
    """Start one more container of a service beside the ones that run, leaving those alone."""
    return compose(
        project, file, "up", "--detach", "--no-build", "--pull", "never", "--no-deps", "--no-recreate",
        "--scale", f"{service}={count}", service,
    )  # fmt: skip


def compose_config(project: str, file: str) -> list[str]:
    return compose(project, file, "config", "--format", "json")


def containers_of(project: str, service: str) -> list[str]:
    return [
        "docker", "ps", "--all", "--quiet", "--no-trunc",
        "--filter", f"label=com.docker.compose.project={project}",
        "--filter", f"label=com.docker.compose.service={service}",
    ]  # fmt: skip


def inspect(ids: Sequence[str]) -> list[str]:
    return ["docker", "inspect", *ids]


def image_id(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", image]


def exec_in(container: str, command: Sequence[str]) -> list[str]:
    return ["docker", "exec", container, *command]


def pin(proxy: str, service: str, addresses: Sequence[str]) -> list[str]:
    return exec_in(proxy, ["render-upstreams", "--pin", service, *addresses])


def unpin(proxy: str, service: str) -> list[str]:
    return exec_in(proxy, ["render-upstreams", "--unpin", service])


def push_routes(proxy: str) -> list[str]:
    return exec_in(proxy, ["render-upstreams"])


def stop(ids: Sequence[str], timeout: int = STOP_TIMEOUT) -> list[str]:
    return ["docker", "stop", "--time", str(timeout), *ids]


def remove(ids: Sequence[str]) -> list[str]:
    return ["docker", "rm", "--force", "--volumes", *ids]


def logs(container: str, lines: int = LOG_LINES) -> list[str]:
    return ["docker", "logs", "--tail", str(lines), container]


def tag(source: str, target: str) -> list[str]:
    return ["docker", "image", "tag", source, target]


def untag(image: str) -> list[str]:
    # Removes the tag; the image itself goes only with its last tag, and never while a container uses it.
    return ["docker", "image", "rm", image]


def release_tag(image: str, project: str, release: int) -> str:
    """framework-lab/NAME:latest -> framework-lab/NAME:PROJECT-release-7: what keeps a release's image
    (tags are the engine's, shared by every compose project on it)."""
    return f"{image.rsplit(':', 1)[0]}:{project}-release-{release}"


def probe_command(healthcheck: Sequence[str] | None) -> list[str] | None:
    """The argv `docker exec` runs for an image's HEALTHCHECK test (None: the image has none)."""
    if not healthcheck or healthcheck[0] == "NONE":
        return None
    if healthcheck[0] == "CMD":
        return list(healthcheck[1:])
    if healthcheck[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", healthcheck[1]]
    return None


# -- the engine ------------------------------------------------------------------------------


def run(
    argv: Sequence[str], check: bool = True, timeout: float | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(argv), text=True, capture_output=True, timeout=timeout, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", "timed out")
    if check and result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise RolloutError(f"`{' '.join(argv[:4])} …` failed with exit code {result.returncode}", tail)
    return result


@dataclass
class Container:
    id: str
    name: str
    image: str  # the image ID it runs
    status: str  # running, exited, …
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    healthcheck: list[str] | None
    addresses: dict[str, str]  # network name -> IPv4 address

    @classmethod
    def from_inspect(cls, data: dict) -> Container:
        state = data["State"]
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        return cls(
            id=data["Id"],
            name=data["Name"].lstrip("/"),
            image=data["Image"],
            status=state["Status"],
            health=(state.get("Health") or {}).get("Status", ""),
            healthcheck=(data["Config"].get("Healthcheck") or {}).get("Test"),
            addresses={name: n["IPAddress"] for name, n in networks.items() if n.get("IPAddress")},
        )


@dataclass
class Report:
    started: list[str] = field(default_factory=list)  # services started where none ran
    replaced: dict[str, dict[str, object]] = field(default_factory=dict)  # service -> old, new, seconds
    unchanged: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"started": self.started, "replaced": self.replaced, "unchanged": self.unchanged}


# -- readiness: the lab's one wait until healthy ------------------------------------------------
# Every wait for a container (lab up and the deploy role through Rollout, the verifier's database
# restart, the bench's restarts, a host's database over SSH) is wait_all below, with a runner that
# reaches the engine the container is on.

Runner = Callable[..., subprocess.CompletedProcess[str]]  # (argv, check=True, timeout=None), as run


def ready(container: Container, run: Runner = run, settled: bool = False) -> bool:
    """Healthy by Docker's last check, or by its healthcheck command run now. Settled: by Docker's
    own check only, which is what compose's `service_healthy` and `docker ps` read."""
    if container.health == "healthy":
        return True
    command = probe_command(container.healthcheck)
    if command is None:
        return container.status == "running"
    if settled:
        return False
    return run(exec_in(container.id, command), check=False, timeout=PROBE_TIMEOUT).returncode == 0


def log(container: Container, run: Runner = run) -> str:
    result = run(logs(container.id), check=False)
    return (result.stdout + result.stderr).strip()


def wait_all(
    containers: Sequence[tuple[str, Container]],
    timeout: float,
    run: Runner = run,
    say: Callable[[str], None] = lambda message: None,
    settled: bool = False,
) -> dict[str, float]:
    """Until every container is ready, all probed side by side every PROBE_INTERVAL; RolloutError
    (with its log) when one exits or the timeout passes. Returns, per container ID, the moment
    (time.monotonic) it was seen ready. Settled: until Docker's own check says so (see ready)."""
    began = time.monotonic()
    deadline = began + timeout
    pending = {c.id: (service, c) for service, c in containers}
    seen: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(pending)))) as pool:
        while pending:
            fresh = [Container.from_inspect(c) for c in json.loads(run(inspect(list(pending))).stdout)]
            for container in fresh:
                if container.status in ("exited", "dead"):
                    service = pending[container.id][0]
                    raise RolloutError(f"{service}: {container.name} exited while starting", log(container, run))
            for container, ok in zip(fresh, pool.map(lambda c: ready(c, run, settled), fresh), strict=True):
                if ok:
                    seen[container.id] = time.monotonic()
                    service = pending.pop(container.id)[0]
                    if container.health != "healthy":  # the probe saw it first: say when
                        say(f"{service}: healthy after {seen[container.id] - began:.1f} s")
            if not pending:
                break
            if time.monotonic() > deadline:
                service, container = next(iter(pending.values()))
                raise RolloutError(f"{service}: {container.name} not healthy after {timeout:g} s", log(container, run))
            time.sleep(PROBE_INTERVAL)
    return seen


def wait_healthy(
    names: Sequence[str],
    timeout: float,
    run: Runner = run,
    say: Callable[[str], None] = lambda message: None,
    settled: bool = False,
) -> dict[str, float]:
    """Until the named containers (names or IDs, started already) are ready, as `lab up` waits: what
    every other wait of the lab calls. Per container ID, the moment (time.monotonic) it was ready."""
    found = [Container.from_inspect(c) for c in json.loads(run(inspect(list(names))).stdout)]
    return wait_all([(c.name, c) for c in found], timeout, run, say, settled)


@dataclass
class Rollout:
    project: str
    file: str
    database: str
    proxy: str
    timeout: float = 240.0  # seconds a container may take to become healthy
    drain: float = 1.0  # seconds an old container keeps its requests after nginx left it
    network: str = "web"  # the compose network nginx reaches the apps on
    say: Callable[[str], None] = lambda message: None
    env: dict[str, str] | None = None  # added to the environment of every command (compose's variables)
    _config: dict | None = None

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(argv, check, timeout, self.env)

    # -- what runs, what should ---------------------------------------------------------------

    def containers(self, service: str) -> list[Container]:
        ids = self.run(containers_of(self.project, service)).stdout.split()
        if not ids:
            return []
        return [Container.from_inspect(c) for c in json.loads(self.run(inspect(ids)).stdout)]

    def config(self) -> dict:
        if self._config is None:
            self._config = json.loads(self.run(compose_config(self.project, self.file)).stdout)
        return self._config

    def wanted(self, services: Sequence[str]) -> dict[str, str]:
        """service -> the image ID a current container runs."""
        return {s: self.run(image_id(self.image_of(s))).stdout.strip() for s in services}

    def image_of(self, service: str) -> str:
        """The image (tag) the compose file gives a service."""
        return self.config()["services"][service]["image"]

    def address(self, container: Container) -> str:
        network = self.config()["networks"][self.network]["name"]
        try:
            return container.addresses[network]
        except KeyError:
            raise RolloutError(f"{container.name} has no address on {network}") from None

    # -- readiness -------------------------------------------------------------------------------

    def ready(self, container: Container) -> bool:
        return ready(container, self.run)

    def wait_ready(self, service: str, containers: list[Container]) -> None:
        self.wait_all([(service, c) for c in containers])

    def wait_all(self, containers: list[tuple[str, Container]]) -> None:
        wait_all(containers, self.timeout, self.run, self.say)

    # -- steps ---------------------------------------------------------------------------------

    def start(self, services: Sequence[str], recreate: bool = False) -> None:
        """compose up for services (it leaves current containers alone), then wait until all are
        ready."""
        if not services:
            return
        self.run(compose_up(self.project, self.file, services, recreate))
        started = []
        for service in services:
            containers = self.containers(service)
            if not containers:
                raise RolloutError(f"{service}: compose started no container")
            started += [(service, c) for c in containers]
        self.wait_all(started)

    def proxy_container(self) -> Container | None:
        running = [c for c in self.containers(self.proxy) if c.status == "running"]
        return running[0] if running else None

    def swap(self, service: str, old: list[Container], proxy: Container) -> dict[str, object]:
        """A new container beside the old ones, nginx moved to it once healthy, the old removed."""
        began = time.monotonic()
        if stopped := [c.id for c in self.containers(service) if c.status != "running"]:
            self.run(remove(stopped))  # compose would start one of these instead of a new container
        self.run(pin(proxy.id, service, [self.address(c) for c in old]))  # the new one gets nothing yet
        switched = False
        new: list[Container] = []
        try:
            self.run(compose_scale(self.project, self.file, service, len(old) + 1))
            new = [c for c in self.containers(service) if c.id not in {o.id for o in old}]
            if not new:
                raise RolloutError(f"{service}: compose started no new container")
            self.say(f"{service}: {new[0].name} started beside {', '.join(c.name for c in old)}")
            self.wait_ready(service, new)
            switched = True
        finally:
            if not switched:  # failed or interrupted: the old ones serve, as before
                if new:
                    self.run(remove([c.id for c in new]), check=False)
                self.run(unpin(proxy.id, service), check=False)
        result = self.retire(service, old, new, proxy)
        return {**result, "seconds": round(time.monotonic() - began, 2)}

    def retire(self, service: str, old: list[Container], new: list[Container], proxy: Container) -> dict[str, object]:
        """nginx sends only to `new` (pinned) from here: old gets `drain` seconds, then goes."""
        self.run(pin(proxy.id, service, [self.address(c) for c in new]))
        time.sleep(self.drain)
        self.run(stop([c.id for c in old]), check=False)
        self.run(remove([c.id for c in old]))
        self.run(unpin(proxy.id, service))
        self.say(f"{service}: {new[0].name} serves, {', '.join(c.name for c in old)} removed")
        return {"old": sorted({c.image for c in old}), "new": new[0].image, "container": new[0].name}

    def up(self, apps: Sequence[str], recreate: Sequence[str] = ()) -> Report:
        """The database, then the apps (all new ones at once, a changed one swapped), then nginx,
        each ready before the next."""
        report = Report()
        wanted = self.wanted([self.database, *apps, self.proxy])

        def current(c: Container, service: str) -> bool:
            return c.image == wanted[service]

        for group in ([self.database], list(apps), [self.proxy]):
            running = {s: [c for c in self.containers(s) if c.status == "running"] for s in group}
            again = [s for s in group if s in recreate and running[s]]
            fresh = [s for s in group if not running[s]]
            self.start(fresh)
            self.start(again, recreate=True)
            report.started += fresh
            report.replaced.update({s: {"recreated": True} for s in again})
            rest = [s for s in group if s not in fresh and s not in again]
            settled = [s for s in rest if len(running[s]) == 1 and current(running[s][0], s)]
            if settled:
                # The image is the wanted one: compose judges the rest of the configuration by its own
                # hash (`config --hash` does not match it across compose versions) and recreates in
                # place what changed; nothing, usually.
                self.run(compose_up(self.project, self.file, settled))
                now = {s: [c for c in self.containers(s) if c.status == "running"] for s in settled}
                self.wait_all([(s, c) for s in settled for c in now[s]])
                for service in settled:
                    if [c.id for c in now[service]] == [running[service][0].id]:
                        report.unchanged.append(service)
                    else:
                        report.replaced[service] = {"recreated": True}
            for service in (s for s in rest if s not in settled):
                proxy = self.proxy_container() if service in apps else None
                if proxy is None:  # the database, nginx, or an app nothing routes to yet: in place
                    self.start([service])
                    report.replaced[service] = {"recreated": True}
                    continue
                keep = [c for c in running[service] if current(c, service)]
                if keep:  # an interrupted swap left a current container beside old ones: finish it
                    self.wait_ready(service, keep)
                    report.replaced[service] = self.retire(
                        service, [c for c in running[service] if c not in keep], keep, proxy
                    )
                    continue
                report.replaced[service] = self.swap(service, running[service], proxy)
        if proxy := self.proxy_container():
            self.run(push_routes(proxy.id), check=False)  # routes now, not at nginx's next look
        return report


# -- releases --------------------------------------------------------------------------------
# A release is what ran after an up that changed something: when, from which commit, by whom,
# and each app's image ID. Each image is kept under a release tag, the newest KEEP per app.


def load_releases(path: str) -> list[dict]:
    try:
        with open(path) as file:
            return json.load(file)["releases"]
    except FileNotFoundError:
        return []


def save_releases(path: str, releases: list[dict]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as file:
        json.dump({"releases": releases}, file, indent=1)
    os.replace(tmp, path)  # whole or not at all


def record(rollout: Rollout, path: str, apps: Sequence[str], commit: str, by: str, note: str = "") -> dict | None:
    """Add a release when the apps run other images than the last release says; tag and prune."""
    releases = load_releases(path)
    last = releases[-1]["images"] if releases else {}
    running = {}
    for app in apps:
        containers = [c for c in rollout.containers(app) if c.status == "running"]
        if containers:
            running[app] = containers[0].image
    images = {**last, **running}
    if images == last:
        return None
    release = {
        "id": releases[-1]["id"] + 1 if releases else 1,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "by": by,
        "note": note,
        "images": images,
    }
    for app, image in running.items():
        rollout.run(tag(image, release_tag(rollout.image_of(app), rollout.project, release["id"])))
    releases.append(release)
    prune(rollout, releases)
    save_releases(path, releases)
    return release


def beyond_keep(releases: list[dict], keep: int = KEEP) -> list[tuple[int, str]]:
    """(release, app) pairs still kept whose image is older than the app's `keep` newest distinct ones."""
    stale = []
    for app in sorted({app for r in releases for app in r["images"]}):
        seen: list[str] = []
        for release in reversed(releases):
            image = release["images"].get(app)
            if image is None:
                continue
            if image not in seen:
                seen.append(image)
            if len(seen) > keep and release.get("kept", {}).get(app, True):
                stale.append((release["id"], app))
    return stale


def prune(rollout: Rollout, releases: list[dict], keep: int = KEEP) -> None:
    """Untag the images beyond each app's `keep` newest, and say so in their releases."""
    by_id = {r["id"]: r for r in releases}
    for release, app in beyond_keep(releases, keep):
        rollout.run(untag(release_tag(rollout.image_of(app), rollout.project, release)), check=False)
        by_id[release].setdefault("kept", {})[app] = False


def forget(rollout: Rollout, path: str) -> int:
    """Remove every release tag of the recorded releases, and the record: the lab is gone for good
    (`lab down --volumes`). Returns how many tags were removed."""
    removed = 0
    services = rollout.config()["services"]
    for release in load_releases(path):
        for app in release["images"]:
            if app in services and release.get("kept", {}).get(app, True):
                tag_name = release_tag(rollout.image_of(app), rollout.project, release["id"])
                removed += rollout.run(untag(tag_name), check=False).returncode == 0
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    return removed


def rollback(
    rollout: Rollout, path: str, apps: Sequence[str], to: int | None, commit: str, by: str
) -> tuple[dict, Report]:
    """Put the images of release `to` (default: the newest earlier one that differs) back under
    the apps' tags, and swap them in like any change."""
    releases = load_releases(path)
    if not releases:
        raise RolloutError("no release is recorded here yet: nothing to roll back to")
    current = releases[-1]
    chosen = list(apps) or sorted(current["images"])
    if to is None:
        earlier = [r for r in releases[:-1] if any(r["images"].get(a) != current["images"].get(a) for a in chosen)]
        if not earlier:
            raise RolloutError(f"no earlier release runs other images of {', '.join(chosen)}")
        target = earlier[-1]
    else:
        matching = [r for r in releases if r["id"] == to]
        if not matching:
            raise RolloutError(f"no release {to} (releases here: {', '.join(str(r['id']) for r in releases)})")
        target = matching[0]
    for app in chosen:
        if app not in target["images"]:
            raise RolloutError(f"release {target['id']} has no {app}")
        if not target.get("kept", {}).get(app, True):
            raise RolloutError(f"release {target['id']}'s image of {app} is no longer kept (the newest {KEEP} are)")
    for app in chosen:  # every image checked before any tag moves
        rollout.run(image_id(release_tag(rollout.image_of(app), rollout.project, target["id"])))
    for app in chosen:
        rollout.run(tag(release_tag(rollout.image_of(app), rollout.project, target["id"]), rollout.image_of(app)))
    report = rollout.up(chosen)
    record(rollout, path, chosen, commit, by, note=f"rollback to release {target['id']}")
    return target, report


# -- command line (what the deploy role runs on a host) ----------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollout.py", description=__doc__.splitlines()[0])
    lab = argparse.ArgumentParser(add_help=False)
    for option in ("--project", "--file", "--database", "--proxy"):
        lab.add_argument(option, required=True)
    lab.add_argument("--timeout", type=float, default=240.0)
    lab.add_argument("--drain", type=float, default=1.0)
    lab.add_argument("--record", help="the releases file: record a release when images changed")
    lab.add_argument("--commit", default="unknown", help="the controller's git commit, for the release")
    lab.add_argument("--by", default="unknown", help="who deploys, for the release")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[lab], help="start the lab, swapping changed apps without a failed request")
    up.add_argument("--recreate", action="append", default=[], help="recreate this service in place")
    up.add_argument("apps", nargs="*")
    back = sub.add_parser("rollback", parents=[lab], help="swap apps back to the images of an earlier release")
    back.add_argument("--to", type=int, help="the release (default: the newest earlier one that differs)")
    back.add_argument("apps", nargs="*")
    listing = sub.add_parser("releases", help="print the recorded releases as JSON")
    listing.add_argument("--record", required=True)
    args = parser.parse_args(argv)
    if args.command == "releases":
        print(json.dumps(load_releases(args.record)))
        return 0
    rollout = Rollout(
        args.project, args.file, args.database, args.proxy, args.timeout, args.drain,
        say=lambda message: print(message, file=sys.stderr),
    )  # fmt: skip
    try:
        if args.command == "rollback":
            if not args.record:
                parser.error("rollback needs --record")
            target, report = rollback(rollout, args.record, args.apps, args.to, args.commit, args.by)
            print(json.dumps({**report.to_json(), "release": target["id"]}))
            return 0
        report = rollout.up(args.apps, args.recreate)
        release = record(rollout, args.record, args.apps, args.commit, args.by) if args.record else None
    except RolloutError as error:
        print(f"rollout: {error}", file=sys.stderr)
        if error.detail:
            print(error.detail, file=sys.stderr)
        print(json.dumps({"error": str(error), "log": error.detail}))
        return 1
    print(json.dumps({**report.to_json(), "release": release["id"] if release else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
