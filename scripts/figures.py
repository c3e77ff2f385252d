#!/usr/bin/env python3
"""Print the lab's figures: each image's size, what they take on disk together (shared layers
counted once), and each running container's memory. Run with the lab up and idle:

    .venv/bin/python scripts/figures.py [--project framework-lab]
"""

from __future__ import annotations

import argparse

import docker


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="framework-lab")
    args = parser.parse_args()
    client = docker.from_env()

    df = client.df()
    images = sorted(
        (i for i in df["Images"] if any(t.startswith("framework-lab/") for t in i.get("RepoTags") or [])),
        key=lambda i: i["RepoTags"][0],
    )
    print(f"{'image':<36} {'size':>12} {'unique':>12}")
    for image in images:
        print(f"{image['RepoTags'][0]:<36} {mib(image['Size']):>12} {mib(image['Size'] - image['SharedSize']):>12}")
    shared = max((i["SharedSize"] for i in images), default=0)
    together = sum(i["Size"] - i["SharedSize"] for i in images) + shared
    print(f"{'all lab images on disk (approx.)':<36} {mib(together):>12}")

    containers = client.containers.list(filters={"label": f"com.docker.compose.project={args.project}"})
    if containers:
        print(f"\n{'container':<36} {'memory':>12}")
        total = 0
        for container in sorted(containers, key=lambda c: c.name):
            stats = container.stats(stream=False)
            memory = stats["memory_stats"]
            used = memory.get("usage", 0) - memory.get("stats", {}).get("total_inactive_file", 0)
            total += used
            print(f"{container.name:<36} {mib(used):>12}")
        print(f"{'all containers':<36} {mib(total):>12}")


if __name__ == "__main__":
    main()
