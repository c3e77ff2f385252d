"""ship-image's reading of the host's images: one SSH round trip gives each tag's ID (an image
whose ID the host has under its tag is not shipped) and the layer chains it has."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "lab" / "files" / "ship-image"


def load_script():
    loader = importlib.machinery.SourceFileLoader("ship_image", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("ship_image", loader))
    loader.exec_module(module)
    return module


def test_host_images_reads_ids_per_tag_and_layer_chains(tmp_path):
    ship = load_script()
    lines = [
        '["framework-lab/a:latest","other:1"] sha256:aaa ["sha256:l1","sha256:l2"]',
        'null sha256:bbb ["sha256:l3"]',  # an untagged image: its layers count, no tag
    ]
    answer = tmp_path / "answer"
    answer.write_text("\n".join(lines) + "\n")
    host = ["sh", "-c", f"cat {answer}", "ssh"]  # stands in for `ssh HOST`: the host's answer, whatever is asked
    ids, chains = ship.host_images(host)
    assert ids == {"framework-lab/a:latest": "sha256:aaa", "other:1": "sha256:aaa"}
    assert chains == set(ship.chain_ids(["sha256:l1", "sha256:l2"])) | {"sha256:l3"}
