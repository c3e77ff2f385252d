"""No secret (database password, an app's secret key, the CA bundle) in any image's layers,
history, or the environment `docker inspect` shows."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.infra.conftest import docker


@pytest.fixture(scope="session")
def secret_values(lab) -> dict[str, bytes]:
    folder = Path(lab["secrets"])
    values = {p.name: p.read_bytes().strip() for p in folder.iterdir() if p.is_file() and p.stat().st_size}
    assert values, f"no secrets in {folder}"
    assert all(len(v) >= 16 for v in values.values())
    key = Path(lab["tls_key"])
    if key.is_file():  # nginx's TLS key: its base64 body, one line of it as any file would hold it
        values["tls_key"] = key.read_bytes().splitlines()[1]
    return values


@pytest.fixture(scope="session")
def images(containers) -> list[str]:
    return sorted({c.inspect["Config"]["Image"] for c in containers})


def test_no_secret_in_environment_or_labels(docker_host, containers, images, secret_values):
    inspected = [c.inspect for c in containers] + json.loads(docker(docker_host, "image", "inspect", *images))
    problems = []
    for data in inspected:
        name = data.get("Name") or data.get("RepoTags")
        config = data.get("Config") or {}
        text = json.dumps({"env": config.get("Env"), "labels": config.get("Labels"), "cmd": config.get("Cmd")})
        problems += [
            f"{name}: {secret} appears in its configuration"
            for secret, v in secret_values.items()
            if v.decode() in text
        ]
        for item in config.get("Env") or []:
            key = item.split("=", 1)[0].upper()
            if ("PASSWORD" in key or "SECRET" in key) and not key.endswith("_FILE"):
                problems.append(f"{name}: environment variable {key} carries a secret")
    assert not problems, "\n".join(problems)


def test_no_secret_in_image_history(docker_host, images, secret_values):
    for image in images:
        history = docker(docker_host, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        for secret, value in secret_values.items():
            assert value.decode() not in history, f"{image}: {secret} in its history"
        assert "PASSWORD=" not in history and "SECRET_KEY=" not in history, image


def test_no_secret_in_any_layer(docker_host, images, secret_values, lab):
    """Every file of every layer of every image, read from `docker save`."""
    if docker_host.backend.NAME != "local":
        pytest.skip("layers are read with `docker save` on the Docker host itself")
    bundle = Path(lab["ca_bundle"])
    bundle_digest = hashlib.sha256(bundle.read_bytes()).hexdigest() if bundle.is_file() else None
    found: list[str] = []
    files = 0
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for member in archive:
            if not member.isfile() or member.size < 512:
                continue
            blob = archive.extractfile(member)
            if blob.peek(512)[257:262] != b"ustar":  # type: ignore[union-attr]  # a config or manifest, not a layer
                continue
            with tarfile.open(fileobj=blob, mode="r|") as layer:
                for item in layer:
                    if not item.isfile():
                        continue
                    files += 1
                    if item.name.startswith("run/secrets/"):
                        found.append(f"{member.name}: {item.name}")
                        continue
                    content = layer.extractfile(item).read()  # type: ignore[union-attr]
                    found += [f"{member.name}: {item.name} holds {s}" for s, v in secret_values.items() if v in content]
                    if bundle_digest and hashlib.sha256(content).hexdigest() == bundle_digest:
                        found.append(f"{member.name}: {item.name} is the build's CA bundle")
    assert save.wait() == 0
    assert files > 1000, f"only {files} files read: the layers were not scanned"
    assert not found, "\n".join(found)
