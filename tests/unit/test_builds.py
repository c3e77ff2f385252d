from lab.builds import BuildState, fingerprint
from lab.stacks import Stack


def test_fingerprint_follows_content_mode_parent_and_args(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    first = fingerprint(tmp_path, "sha256:a", {"parent": "p"})
    assert first == fingerprint(tmp_path, "sha256:a", {"parent": "p"})
    assert first != fingerprint(tmp_path, "sha256:b", {"parent": "p"})
    assert first != fingerprint(tmp_path, "sha256:a", {"parent": "q"})
    (tmp_path / "app.py").chmod(0o755)
    assert first != fingerprint(tmp_path, "sha256:a", {"parent": "p"})


def test_fingerprint_ignores_bytecode_caches(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    before = fingerprint(tmp_path, "p", {})
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\0")
    assert fingerprint(tmp_path, "p", {}) == before
    (tmp_path / "app.py").write_text("print(2)\n")
    assert fingerprint(tmp_path, "p", {}) != before


def test_build_state_needs_same_fingerprint_and_image(tmp_path):
    stack = Stack(name="x", kind="app", title="X", path=tmp_path)
    state = BuildState(tmp_path / "state" / "builds.json")
    assert not state.is_current(stack, "f1", "sha256:1")
    state.record(stack, "f1", "sha256:1")
    again = BuildState(tmp_path / "state" / "builds.json")
    assert again.is_current(stack, "f1", "sha256:1")
    assert not again.is_current(stack, "f2", "sha256:1")
    assert not again.is_current(stack, "f1", "sha256:2")
    assert not again.is_current(stack, "f1", None)
