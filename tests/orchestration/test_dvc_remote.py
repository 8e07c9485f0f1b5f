"""Sharing data and models through a DVC remote (a local folder here; S3, GCS or SSH the same way): push from one
clone, pull into a fresh clone, and `dvc repro` there has nothing to do."""
from __future__ import annotations

from tests.orchestration.repos import dvc, make_repo, ran_stages, sh


def test_pushed_outputs_pull_into_a_fresh_clone_where_repro_is_a_no_op(tmp_path):
    remote = tmp_path / "remote"
    first = make_repo(tmp_path / "first", remote)
    assert any(p.is_file() for p in remote.rglob("*"))  # the cache went to the remote

    fresh = tmp_path / "fresh"
    sh(["git", "clone", "-q", str(first), str(fresh)], tmp_path)
    assert not (fresh / "out").exists()
    dvc(fresh, "pull")
    assert (fresh / "out" / "data.txt").read_text() == (first / "out" / "data.txt").read_text()
    output = dvc(fresh, "repro")
    assert ran_stages(output) == [] and "up to date" in output
    assert "up to date" in dvc(fresh, "status")
