from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipeline.corpora import archive as archive_mod
from pipeline.corpora.archive import UnsafeArchiveError, extract
from pipeline.shards import file_sha256

FILES = {"corpus/a.txt": b"alpha\n", "corpus/sub/b.wav": b"RIFF....WAVE", "README": b"hi\n"}


def _add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _add_link(tf: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tf.addfile(info)


def _make_tar(path: Path, mode: str = "w:gz", files: dict[str, bytes] = FILES) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            _add_file(tf, name, data)
    return path


def _make_zip(path: Path, files: dict[str, bytes] = FILES) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _assert_files(target: Path) -> None:
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data


def _assert_clean(tmp_path: Path, target: Path) -> None:
    """Nothing escaped, no marker, no leftover temporary directory."""
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not (target / ".extracted").exists()
    assert not (target.parent / f".{target.name}.tmp").exists()


@pytest.mark.parametrize(
    ("name", "mode"),
    [("c.tar", "w"), ("c.tar.gz", "w:gz"), ("c.tgz", "w:gz"), ("c.tar.bz2", "w:bz2"), ("c.tar.xz", "w:xz")],
)
def test_tar_round_trip(tmp_path: Path, name: str, mode: str) -> None:
    arc = _make_tar(tmp_path / name, mode)
    target = tmp_path / "data" / "out"
    assert extract(arc, target) == target
    _assert_files(target)
    marker = json.loads((target / ".extracted").read_text())
    assert marker == {"archive": name, "size": arc.stat().st_size, "sha256": file_sha256(arc)}
    assert not (target.parent / ".out.tmp").exists()


def test_zip_round_trip(tmp_path: Path) -> None:
    arc = _make_zip(tmp_path / "c.zip")
    target = tmp_path / "out"
    extract(arc, target, marker=".done")
    _assert_files(target)
    assert json.loads((target / ".done").read_text())["archive"] == "c.zip"


def test_detects_by_content_not_suffix(tmp_path: Path) -> None:
    arc = _make_zip(tmp_path / "misnamed.tar.gz")
    extract(arc, tmp_path / "out")
    _assert_files(tmp_path / "out")


def test_non_archive_raises_value_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.tar.gz"
    bogus.write_bytes(b"this is not an archive\n" * 50)
    with pytest.raises(ValueError, match="notes.tar.gz"):
        extract(bogus, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tar_path_traversal_rejected(tmp_path: Path) -> None:
    arc = tmp_path / "evil.tar"
    with tarfile.open(arc, "w") as tf:
        _add_file(tf, "ok.txt", b"fine")
        _add_file(tf, "../evil.txt", b"pwned")
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=r"evil\.tar.*\.\./evil\.txt"):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_tar_absolute_path_rejected(tmp_path: Path) -> None:
    arc = tmp_path / "abs.tar"
    escape = tmp_path / "evil.txt"
    with tarfile.open(arc, "w") as tf:
        _add_file(tf, str(escape), b"pwned")
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_tar_symlink_escape_rejected(tmp_path: Path) -> None:
    arc = tmp_path / "link.tar"
    with tarfile.open(arc, "w") as tf:
        _add_link(tf, "escape", "../..", tarfile.SYMTYPE)
        _add_file(tf, "escape/evil.txt", b"pwned")
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="escape"):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_tar_symlink_chain_escape_rejected(tmp_path: Path) -> None:
    # each link looks harmless lexically; only the file system reveals the escape
    arc = tmp_path / "chain.tar"
    with tarfile.open(arc, "w") as tf:
        _add_link(tf, "a", ".", tarfile.SYMTYPE)
        _add_link(tf, "b", "a/a/a/x/../..", tarfile.SYMTYPE)
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_tar_symlink_inside_is_allowed(tmp_path: Path) -> None:
    arc = tmp_path / "ok.tar"
    with tarfile.open(arc, "w") as tf:
        _add_file(tf, "dir/real.txt", b"real")
        _add_link(tf, "dir/alias.txt", "real.txt", tarfile.SYMTYPE)
    target = tmp_path / "out"
    extract(arc, target)
    assert (target / "dir" / "alias.txt").is_symlink()
    assert (target / "dir" / "alias.txt").read_bytes() == b"real"


def test_tar_hardlink_escape_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    arc = tmp_path / "hard.tar"
    with tarfile.open(arc, "w") as tf:
        _add_link(tf, "grab", "../secret.txt", tarfile.LNKTYPE)
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="grab"):
        extract(arc, target)
    _assert_clean(tmp_path, target)
    assert outside.read_bytes() == b"secret"


def test_tar_device_rejected(tmp_path: Path) -> None:
    arc = tmp_path / "dev.tar"
    with tarfile.open(arc, "w") as tf:
        fifo = tarfile.TarInfo("pipe")
        fifo.type = tarfile.FIFOTYPE
        tf.addfile(fifo)
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="pipe"):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_zip_path_traversal_rejected(tmp_path: Path) -> None:
    arc = _make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", "../evil.txt": b"pwned"})
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=r"evil\.zip.*\.\./evil\.txt"):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_zip_absolute_path_rejected(tmp_path: Path) -> None:
    arc = _make_zip(tmp_path / "abs.zip", {"/evil.txt": b"pwned"})
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        extract(arc, target)
    _assert_clean(tmp_path, target)


def test_second_call_is_skipped_by_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arc = _make_tar(tmp_path / "c.tar.gz")
    target = tmp_path / "out"
    extract(arc, target)

    def boom(*args: object) -> None:
        raise AssertionError("re-extracted despite a matching marker")

    monkeypatch.setattr(archive_mod, "_extract_tar", boom)
    assert extract(arc, target) == target
    _assert_files(target)


def test_changed_archive_is_re_extracted(tmp_path: Path) -> None:
    arc = _make_tar(tmp_path / "c.tar.gz")
    target = tmp_path / "out"
    extract(arc, target)
    _make_tar(arc, files={**FILES, "corpus/new.txt": b"a new file with more bytes\n"})
    extract(arc, target)
    assert (target / "corpus" / "new.txt").exists()
    assert json.loads((target / ".extracted").read_text())["size"] == arc.stat().st_size


def test_leftover_tmp_is_wiped_and_extraction_completes(tmp_path: Path) -> None:
    arc = _make_tar(tmp_path / "c.tar.gz")
    target = tmp_path / "out"
    leftover = tmp_path / ".out.tmp"
    (leftover / "corpus").mkdir(parents=True)
    (leftover / "corpus" / "stale.txt").write_bytes(b"half-written")
    extract(arc, target)
    _assert_files(target)
    assert not (target / "corpus" / "stale.txt").exists()
    assert not leftover.exists()
    assert (target / ".extracted").exists()


def test_interrupted_extraction_leaves_no_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arc = _make_tar(tmp_path / "c.tar.gz")
    target = tmp_path / "out"

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(archive_mod, "_move_contents", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract(arc, target)
    assert not (target / ".extracted").exists()
    monkeypatch.undo()
    extract(arc, target)
    _assert_files(target)
    assert (target / ".extracted").exists()


def test_an_archive_of_the_same_name_and_size_with_other_bytes_is_re_extracted(tmp_path: Path) -> None:
    arc = _make_tar(tmp_path / "c.tar", mode="w", files={"corpus/a.txt": b"version 1\n"})
    target = tmp_path / "out"
    extract(arc, target)
    size = arc.stat().st_size
    _make_tar(arc, mode="w", files={"corpus/a.txt": b"version 2\n"})
    assert arc.stat().st_size == size
    extract(arc, target)
    assert (target / "corpus" / "a.txt").read_bytes() == b"version 2\n"
    assert json.loads((target / ".extracted").read_text())["sha256"] == file_sha256(arc)
