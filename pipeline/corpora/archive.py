"""Safe, atomic, resumable extraction of tar and zip archives."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from pipeline.shards import file_sha256

log = logging.getLogger(__name__)


class UnsafeArchiveError(ValueError):
    """An archive member would escape the extraction directory or is a special file."""


def extract(archive: Path, target: Path, *, marker: str = ".extracted",
            include: Callable[[str], bool] | None = None) -> Path:
    """Extract `archive` (tar, tar.gz/bz2/xz or zip) into `target` and return `target`.

    `include(member_name)` selects the members to write (all by default); every member is safety-checked.

    Extraction goes to a temporary sibling directory first; only when it has fully
    succeeded are the contents moved into `target` and `target/marker` written.
    A later call with the same archive (same name, size and sha256) is skipped; another archive under the same
    name (a new version, a corrupted copy) is extracted again.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    marker_path = target / marker
    size = archive.stat().st_size
    digest = file_sha256(archive)
    if _marker_matches(marker_path, archive.name, size, digest):
        log.info("%s already extracted into %s (marker %s); skipping", archive.name, target, marker)
        return target
    kind = _detect_kind(archive)
    tmp = target.parent / f".{target.name}.tmp"
    _prepare_tmp(tmp)
    try:
        if kind == "tar":
            _extract_tar(archive, tmp, include)
        else:
            _extract_zip(archive, tmp, include)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    target.mkdir(parents=True, exist_ok=True)
    marker_path.unlink(missing_ok=True)  # a stale marker must not survive a half-done move
    _move_contents(tmp, target)
    tmp.rmdir()
    _write_marker(marker_path, archive, size, digest)
    log.info("extracted %s into %s", archive, target)
    return target


def _marker_matches(marker_path: Path, name: str, size: int, digest: str) -> bool:
    try:
        info = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and (info.get("archive"), info.get("size"), info.get("sha256")) == (name, size, digest)


def _write_marker(marker_path: Path, archive: Path, size: int, digest: str) -> None:
    info = {"archive": archive.name, "size": size, "sha256": digest}
    tmp = marker_path.with_name(marker_path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, marker_path)


def _detect_kind(archive: Path) -> str:
    # tar first: a tar whose last member is a zip can look like a zip from its tail
    if tarfile.is_tarfile(archive):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    raise ValueError(f"{archive} is neither a tar (.tar, .tar.gz, .tar.bz2, .tar.xz) nor a zip archive")


def _prepare_tmp(tmp: Path) -> None:
    if tmp.exists() or tmp.is_symlink():
        log.warning("removing leftover %s from an interrupted extraction", tmp)
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp)
        else:
            tmp.unlink()
    tmp.mkdir(parents=True)


def _check_name(archive: Path, name: str, member: str | None = None) -> None:
    """Reject absolute paths and '..' in `name` (a member name or a hardlink target)."""
    what = f"member {name!r}" if member is None else f"member {member!r} links to {name!r}, which"
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"{archive}: {what} has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: {what} contains a '..' component")


def _check_inside(archive: Path, name: str, root: Path, path: Path, what: str) -> None:
    resolved, base = os.path.realpath(path), os.path.realpath(root)
    if resolved != base and not resolved.startswith(base + os.sep):
        raise UnsafeArchiveError(f"{archive}: member {name!r} {what} outside the extraction directory")


def _check_tar_member(archive: Path, member: tarfile.TarInfo, root: Path) -> None:
    _check_name(archive, member.name)
    _check_inside(archive, member.name, root, root / member.name, "resolves")
    if member.isdev():
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or fifo")
    if member.issym():
        if os.path.isabs(member.linkname):
            raise UnsafeArchiveError(f"{archive}: symlink {member.name!r} has an absolute target")
        link_target = root / PurePosixPath(member.name).parent / member.linkname
        _check_inside(archive, member.name, root, link_target, "links")
    elif member.islnk():
        _check_name(archive, member.linkname, member.name)
        _check_inside(archive, member.name, root, root / member.linkname, "hard-links")


def _extract_tar(archive: Path, tmp: Path, include: Callable[[str], bool] | None) -> None:
    def safe_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        _check_tar_member(archive, member, Path(path))
        if include is not None and not include(member.name):
            return None
        try:
            # data_filter re-checks against the real file system, which catches
            # escapes through symlinks extracted earlier in the same archive
            return tarfile.data_filter(member, path)
        except tarfile.FilterError as exc:
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} rejected: {exc}") from exc

    with tarfile.open(archive) as tf:
        tf.errorlevel = 1
        tf.extractall(tmp, filter=safe_filter)


def _extract_zip(archive: Path, tmp: Path, include: Callable[[str], bool] | None) -> None:
    with zipfile.ZipFile(archive) as zf:
        # zipfile would silently rewrite unsafe names; refuse them instead
        for info in zf.infolist():
            _check_name(archive, info.filename)
            _check_inside(archive, info.filename, tmp, tmp / info.filename, "resolves")
        members = [i for i in zf.infolist() if include is None or include(i.filename)]
        zf.extractall(tmp, members=members)


def _move_contents(src: Path, dst: Path) -> None:
    """Move every entry of `src` into `dst`, merging directories that already exist."""
    for entry in src.iterdir():
        out = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and out.is_dir() and not out.is_symlink():
            _move_contents(entry, out)
            entry.rmdir()
            continue
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        os.replace(entry, out)
