import stat

from lab import secrets


def test_secrets_are_created_once_in_a_private_folder(tmp_path):
    folder = tmp_path / "secrets"
    assert secrets.ensure(folder, ["db_password", "key"]) == ["db_password", "key"]
    first = (folder / "db_password").read_text()
    assert len(first) >= 48
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert secrets.ensure(folder, ["db_password", "key"]) == []
    assert (folder / "db_password").read_text() == first
    assert first != (folder / "key").read_text()
