"""Files are written whole or not at all."""

import json

import pytest

from vae.files import atomic_write, write_json


def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"test/elbo": -100.0})
    with pytest.raises(RuntimeError):
        with atomic_write(path) as file:
            file.write('{"test/elbo": ')
            raise RuntimeError("killed mid-write")
    assert json.loads(path.read_text()) == {"test/elbo": -100.0}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and len(list(tmp_path.iterdir())) == 1
