"""One manifest per saved model directory, and atomic saving of such directories.

Why: a saved model is a directory of several files (configs, safetensors, skops, booster
files), and all of them change what the model predicts. A per-file checksum on some of them
lets the others be corrupted or tampered with silently, and a save that is interrupted half
way leaves a directory that looks like a model. So:

* :func:`write_manifest` records *every* file under the directory (relative POSIX path, size,
  sha256) in ``manifest.json``, written last.
* :func:`verify_manifest` runs before a loader reads anything else and refuses, with one line
  naming the file, a directory whose manifest is missing, whose files are missing, extra,
  resized or changed, or which contains a symlink or a special file (a link is how a model
  directory reaches outside itself). It returns a :class:`Manifest` whose
  :meth:`~Manifest.read_bytes` hands out file contents checked against the manifest again, so a
  file swapped between verification and use is caught too.
* :func:`atomic_directory` yields a temporary directory next to the target and, when the
  ``with`` block succeeds, writes the manifest and swaps the directory into place in one
  rename, so a kill at any moment leaves either the previous model or the new one.

The manifest is an integrity record, not a signature: whoever can rewrite the files can rewrite
the manifest. What a crafted model may *execute* is bounded elsewhere (the skops type
allow-list in :mod:`matfuse.models.persistence`, safetensors and JSON for everything else).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_NAME",
    "FileEntry",
    "Manifest",
    "UnsafeModelError",
    "atomic_directory",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "matfuse.manifest"
MANIFEST_VERSION = 1
#: A manifest is a few hundred bytes per file; anything larger is not one of ours.
_MAX_MANIFEST_BYTES = 16 << 20
#: Limits on what a save carries over from a non-model target directory (see
#: :func:`atomic_directory`): enough for a training report, refused for, say, a home directory.
_MAX_CARRIED_FILES = 10_000
_MAX_CARRIED_BYTES = 256 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class UnsafeModelError(ValueError):
    """A saved model failed its integrity checks or would instantiate a type not allowed.

    A ``ValueError`` so that callers that already turn bad input into a clean error (the CLI)
    handle it without knowing about it.
    """


@dataclass(frozen=True)
class FileEntry:
    """Size in bytes and sha256 (hex) of one file of a saved model."""

    size: int
    sha256: str


def _digest(path: Path, *, sync: bool = False) -> FileEntry:
    """Size and sha256 of ``path``, read without following a final symlink.

    ``sync`` flushes the file to disk on the way (the save path): the rename that publishes a
    model must not reach the disk before the files it names.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(handle.fileno())
    return FileEntry(size=size, sha256=digest.hexdigest())


def _scan(root: Path, ignore: frozenset[str], what: str) -> dict[str, Path]:
    """Every regular file under ``root`` by relative POSIX path; refuse links and specials.

    ``ignore`` names top-level files that are not part of the manifest (a model card that is
    rewritten after export); they must still be regular files.
    """
    found: dict[str, Path] = {}
    stack: list[tuple[Path, PurePosixPath]] = [(root, PurePosixPath())]
    while stack:
        folder, rel_folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = rel_folder / entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise UnsafeModelError(
                        f"{what} {root}: {rel.as_posix()} is a symlink; model directories "
                        "may not contain links"
                    )
                if stat.S_ISDIR(mode):
                    stack.append((Path(entry.path), rel))
                elif not stat.S_ISREG(mode):
                    raise UnsafeModelError(f"{what} {root}: {rel.as_posix()} is not a regular file")
                elif not (rel_folder == PurePosixPath() and entry.name in ignore):
                    found[rel.as_posix()] = Path(entry.path)
    return found


def _check_relative(name: Any, root: Path) -> str:
    """A manifest key must be a plain relative POSIX path inside the directory."""
    ok = isinstance(name, str) and bool(name) and "\\" not in name and "\0" not in name
    if ok:
        path = PurePosixPath(name)
        ok = (
            not path.is_absolute()
            and path.as_posix() == name
            and all(part not in ("", ".", "..") for part in path.parts)
            and name != MANIFEST_NAME
        )
    if not ok:
        raise UnsafeModelError(
            f"refusing to load {root}: {MANIFEST_NAME} lists {name!r}, which is not a path "
            "inside the model directory"
        )
    return str(name)


def write_manifest(
    directory: str | Path, kind: str, *, ignore: frozenset[str] = frozenset()
) -> Path:
    """Record every file under ``directory`` in ``manifest.json`` and return its path.

    Call it last: a manifest that exists is the statement that the directory is complete.
    Files are flushed to disk while being hashed.
    """
    root = Path(directory)
    files = {
        rel: _digest(path, sync=True)
        for rel, path in sorted(_scan(root, ignore | {MANIFEST_NAME}, "cannot save").items())
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "kind": kind,
        "files": {rel: {"size": e.size, "sha256": e.sha256} for rel, e in files.items()},
    }
    target = root / MANIFEST_NAME
    with target.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    logger.debug("manifest of %s: %d files", root, len(files))
    return target


@dataclass(frozen=True)
class Manifest:
    """A verified model directory: its kind and the size/sha256 of each of its files."""

    root: Path
    kind: str
    files: Mapping[str, FileEntry]

    def read_bytes(self, name: str) -> bytes:
        """The contents of listed file ``name``, refused unless they still match the manifest.

        Loaders parse these bytes rather than reopening the path, so what was checked is what
        is used.
        """
        entry = self.files.get(name)
        if entry is None:
            raise UnsafeModelError(
                f"refusing to load {self.root}: {name} is not listed in {MANIFEST_NAME}"
            )
        fd = os.open(self.root / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(entry.size + 1)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise UnsafeModelError(
                f"refusing to load {self.root}: {name} changed while the model was loading"
            )
        return data

    def read_json(self, name: str) -> Any:
        """:meth:`read_bytes` parsed as JSON."""
        try:
            return json.loads(self.read_bytes(name))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UnsafeModelError(
                f"refusing to load {self.root}: {name} is not valid JSON ({err})"
            ) from None


def _parse_manifest(root: Path, raw: bytes) -> tuple[str, dict[str, FileEntry]]:
    def bad(why: str) -> UnsafeModelError:
        return UnsafeModelError(f"refusing to load {root}: {MANIFEST_NAME} {why}")

    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("is not valid JSON") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise bad("is not a matfuse manifest")
    if data.get("format_version") != MANIFEST_VERSION:
        raise bad(
            f"has format_version {data.get('format_version')!r}; this matfuse reads "
            f"version {MANIFEST_VERSION}"
        )
    listed = data.get("files")
    if not isinstance(listed, dict) or not isinstance(data.get("kind"), str):
        raise bad("has no 'kind' or no 'files' table")
    files: dict[str, FileEntry] = {}
    for name, entry in listed.items():
        rel = _check_relative(name, root)
        size = entry.get("size") if isinstance(entry, dict) else None
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        if type(size) is not int or size < 0 or not isinstance(sha, str):
            raise bad(f"has a malformed entry for {rel}")
        if not _SHA256.fullmatch(sha):
            raise bad(f"has a malformed sha256 for {rel}")
        files[rel] = FileEntry(size=size, sha256=sha)
    return data["kind"], files


def verify_manifest(
    directory: str | Path, kind: str | None = None, *, ignore: frozenset[str] = frozenset()
) -> Manifest:
    """Check ``directory`` against its manifest before anything in it is read.

    Raises :class:`UnsafeModelError` (one line, naming the file) when the manifest is missing
    or malformed, a listed file is missing, resized or changed, a file is present that is not
    listed, or the directory holds a symlink or a special file; ``ValueError`` when the
    manifest says the directory holds another ``kind`` of model. ``ignore`` names top-level
    files left out of the manifest on purpose (see :func:`write_manifest`).
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    manifest_path = root / MANIFEST_NAME
    try:
        fd = os.open(manifest_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise UnsafeModelError(
            f"refusing to load {root}: no {MANIFEST_NAME}, so it was saved by an older matfuse "
            "or its save did not finish; matfuse is pre-1.0 and does not read models without "
            "a manifest: retrain it (or load it with the version that wrote it and save again)"
        ) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeModelError(
                f"refusing to load {root}: {MANIFEST_NAME} is a symlink"
            ) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(_MAX_MANIFEST_BYTES + 1)
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise UnsafeModelError(f"refusing to load {root}: {MANIFEST_NAME} is too large")
    found_kind, files = _parse_manifest(root, raw)
    if kind is not None and found_kind != kind:
        raise ValueError(f"{root} holds a {found_kind}, not a {kind}")

    present = _scan(root, ignore | {MANIFEST_NAME}, "refusing to load")
    for name in sorted(files):
        if name not in present:
            raise UnsafeModelError(
                f"refusing to load {root}: {name} is listed in {MANIFEST_NAME} but missing"
            )
    for name in sorted(present):
        if name not in files:
            raise UnsafeModelError(
                f"refusing to load {root}: {name} is not listed in {MANIFEST_NAME} "
                "(files were added to the model directory)"
            )
    for name in sorted(files):
        expected, actual = files[name], _digest(present[name])
        if actual.size != expected.size:
            raise UnsafeModelError(
                f"refusing to load {root}: {name} does not match its size and sha256 in "
                f"{MANIFEST_NAME} ({actual.size} bytes, expected {expected.size}): the model "
                "was modified or corrupted"
            )
        if actual.sha256 != expected.sha256:
            raise UnsafeModelError(
                f"refusing to load {root}: {name} does not match its sha256 in "
                f"{MANIFEST_NAME}: the model was modified or corrupted"
            )
    return Manifest(root=root, kind=found_kind, files=files)


# -- atomic saving ----------------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call or the flag is not available, so the caller falls back to
    two renames.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fresh_sibling(target: Path) -> Path:
    """A new empty directory next to ``target``, hidden, with the usual (umask) permissions.

    Not :func:`tempfile.mkdtemp`: its 0700 mode would become the saved model's mode.
    """
    while True:
        tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(6)}")
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` to ``target``, replacing a previous directory there."""
    if not os.path.lexists(target):
        os.rename(tmp, target)
    elif _exchange(tmp, target):
        shutil.rmtree(tmp)  # now holds the previous directory
    else:
        logger.warning("no atomic directory exchange here; replacing %s in two renames", target)
        old = target.with_name(f".{target.name}.old-{secrets.token_hex(6)}")
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            os.rename(old, target)
            raise
        shutil.rmtree(old)
    _fsync_dir(target.parent)


def _carried_entries(target: Path, owns: Callable[[str], bool]) -> list[str]:
    """Top-level entries of an existing ``target`` that the new model must keep.

    Entries the model owns (and the old manifest) are replaced; anything else (say the
    ``report/`` that ``matfuse train`` writes next to the model) is copied into the new
    directory. Refused: links and special files (they could not be loaded afterwards) and
    more than a training report's worth of content (a wrong ``--out`` such as a home directory
    must not be copied around).
    """
    names = sorted(n for n in os.listdir(target) if n != MANIFEST_NAME and not owns(n))
    n_files = n_bytes = 0
    for name in names:
        for path in _scan_entry(target / name, target):
            n_files += 1
            n_bytes += path.stat().st_size
        if n_files > _MAX_CARRIED_FILES or n_bytes > _MAX_CARRIED_BYTES:
            raise FileExistsError(
                f"{target} holds other files than a matfuse model ({n_files} files, "
                f"{n_bytes} bytes so far); save the model into a new or empty directory"
            )
    return names


def _scan_entry(path: Path, target: Path) -> Iterator[Path]:
    """Regular files of one top-level entry; links and special files are refused."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise FileExistsError(
            f"{target} holds {path.name}, a link or special file; save the model into a new "
            "or empty directory"
        )
    if stat.S_ISREG(mode):
        yield path
        return
    try:
        yield from (p for p in _scan(path, frozenset(), "cannot save into").values())
    except UnsafeModelError as err:
        raise FileExistsError(f"{err}; save the model into a new or empty directory") from None


@contextmanager
def atomic_directory(
    target: str | Path,
    kind: str,
    *,
    owns: Callable[[str], bool],
    overwrite: bool = True,
    ignore: frozenset[str] = frozenset(),
) -> Iterator[Path]:
    """Yield an empty directory to save a model into; on success it becomes ``target``.

    The directory is created next to ``target`` (same filesystem, so the final rename is
    atomic). When the ``with`` block returns, entries of an existing ``target`` that the model
    does not ``own`` are copied in (so they survive and are listed), the manifest is written
    last, and the directory replaces ``target`` in one exchange: readers, and a kill -9 at any
    moment, see either the previous directory or the complete new one. On an exception the
    temporary directory is removed and ``target`` is untouched.

    ``overwrite=False`` refuses a non-empty ``target``. ``owns(name)`` says whether a top-level
    name belongs to the model (it is replaced, not carried over).
    """
    target = Path(target).absolute()
    if target.is_symlink():  # a link to where the user keeps models: save there
        target = target.resolve()
    carried: list[str] = []
    if os.path.lexists(target):
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a directory")
        if any(target.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{target} is not empty; pass overwrite=True to replace")
            cwd = Path.cwd().resolve()
            if cwd == target.resolve() or target.resolve() in cwd.parents:
                raise FileExistsError(
                    f"{target} contains the current directory; save the model elsewhere"
                )
            carried = _carried_entries(target, owns)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_sibling(target)
    try:
        yield tmp
        for name in carried:
            source = target / name
            if source.is_dir():
                shutil.copytree(source, tmp / name, symlinks=True)
            else:
                shutil.copy2(source, tmp / name)
        write_manifest(tmp, kind, ignore=ignore)
        _fsync_dir(tmp)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.debug("saved %s %s", kind, target)
