import stat

import pytest

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


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "", "UPPER"])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name):
    with pytest.raises(ValueError):
        secrets.ensure(tmp_path / "secrets", [name])
    assert [p.name for p in tmp_path.rglob("*")] == ["secrets"]


def test_an_empty_secret_is_replaced_whole(tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "key").write_text("")
    assert secrets.ensure(folder, ["key"]) == ["key"]
    assert len((folder / "key").read_text()) >= 48
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o644  # bind-mounted for non-root apps
    assert sorted(p.name for p in folder.iterdir()) == ["key"]  # no temporary file left
