"""Files in and out: inputs that must be regular files, results written atomically and
never over an input or an existing file unasked, and a lock on a folder a run writes.

A result is written to a temporary file in its own folder, synced, then renamed into
place, so an interrupted or failed write leaves the previous file (or nothing) behind,
never a truncated one.
"""
from __future__ import annotations

import contextlib
import csv
import io
import errno
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from ..errors import SSCNError

try:  # POSIX; elsewhere folders are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path, what: str) -> BinaryIO:
    """Open ``path`` for reading in binary mode; anything but a regular file is an :class:`SSCNError`.

    A device (``/dev/zero`` never ends), a named pipe (it blocks until someone writes) or a
    socket is refused before it is read. A system refusal (no permission) stays an ``OSError``.
    """
    path = Path(path)
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise SSCNError(f"{what} {path} is {_kind(mode)}, not a file; pass a regular file")
    # non-blocking: a pipe put in the file's place after the check must not hang the open
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SSCNError(f"{what} {path} is {_kind(mode)}, not a file; pass a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (a hard link or another spelling included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(Path(folder).resolve())


def check_output(path: str | Path, inputs: Iterable[tuple[str, str | Path]] = (), overwrite: bool = False,
                 flag: str = "-o", protected: Iterable[tuple[str, str | Path]] = ()) -> Path:
    """Refuse an output path that would destroy data; returns it as a ``Path``.

    Refused: one of the ``inputs`` (``(role, path)`` pairs; the same file under another
    name or a hard link included), a path inside one of the ``protected`` folders
    (``(flag, folder)`` pairs: the data a command reads), a symbolic link (writing through
    it would change another file), a folder, a name that ends in a slash, a path whose
    folder cannot be made (a file is in the way), and an existing file unless ``overwrite``.
    """
    text = os.fspath(path)
    if text.endswith(("/", os.sep)) or not text:
        raise SSCNError(f"{flag} {text!r} names a folder; pass a file name")
    path = Path(path)
    for role, source in inputs:
        if source is not None and same_file(path, Path(source)):
            raise SSCNError(f"{flag} {path} is the {role}; the result must not replace an input, choose another {flag}")
    for data_flag, folder in protected:
        if folder is not None and _inside(path, Path(folder)):
            raise SSCNError(f"{flag} {path} is inside {data_flag} {folder}, which sscn only reads; "
                            f"choose an {flag} outside it")
    if path.is_symlink():
        raise SSCNError(f"{flag} {path} is a symbolic link; pass the path of a new file "
                        "(sscn never writes through links)")
    if path.is_dir():
        raise SSCNError(f"{flag} {path} is a folder; pass a file name")
    _check_folder(path, flag)
    if path.exists() and not overwrite:
        raise SSCNError(f"{path} already exists; pass --overwrite to replace it, or choose another {flag}")
    return path


def _check_folder(path: Path, flag: str) -> None:
    """The output's folder exists or can be made: checked before the work, not after it."""
    folder = path.absolute().parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise SSCNError(f"{flag} {path}: {folder} is a file, not a folder; choose another {flag}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "no permission to write in this folder", str(folder))


# Temporary files: one short, fixed pattern (a user's name of up to 255 bytes still fits
# beside it), visibly unfinished, and held under an flock while written, so the next
# write into the folder can tell one left by a killed process (no lock) from one being
# written now. The age guard covers the instant between creating a file and locking it.
TEMP_PREFIX, TEMP_SUFFIX = ".sscn-unfinished-", ".tmp"
STALE_AFTER = 5.0  # seconds
_cleaned: set[str] = set()  # folders already cleaned by this process (a folder of 10,000 PNGs is scanned once)


def clean_stale(folder: str | Path, again: bool = False, min_age: float = STALE_AFTER) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` (never one still being written).

    Each folder is scanned once per process unless ``again``. A folder that this process has
    locked (:func:`lock_folder`) has no other writer, so its caller may pass ``min_age=0``."""
    removed = []
    key = os.path.abspath(folder)
    if fcntl is None or (key in _cleaned and not again):
        return removed
    _cleaned.add(key)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime < min_age:
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its writer lives
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _temp_file(folder: Path) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    if fcntl is not None:
        with contextlib.suppress(OSError):  # a file system without locks: the file still works
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd, Path(tmp)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None], overwrite: bool = False, *,
                 inputs: Iterable[tuple[str, str | Path]] = (), protected: Iterable[tuple[str, str | Path]] = (),
                 flag: str = "-o") -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, sync it, then move it to ``path``.

    The one writer of every file sscn makes. Without ``overwrite`` the move fails (an
    :class:`SSCNError`) when ``path`` exists by then, even if it appeared while writing. Any
    failure, an interrupt included, removes the temporary file and leaves ``path`` as it was;
    an error names ``path``, never the temporary file. A replaced file keeps its permission
    bits. ``inputs`` and ``protected`` are checked again just before the move, as by
    :func:`check_output` (callers check them before their work too). Temporary files that a
    killed run left in the folder are removed first (:func:`clean_stale`).
    """
    path = Path(path)
    inputs, protected = list(inputs), list(protected)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path.parent)
        fd, tmp = _temp_file(path.parent)
    except OSError as err:
        raise _naming(err, path, None) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            if inputs or protected:
                check_output(path, inputs, True, flag, protected)
            os.chmod(tmp, _mode_for(path, overwrite))
            # moved while the lock is held, so no cleaner can take it for a killed writer's
            if overwrite:
                os.replace(tmp, path)
            else:
                _move_new(tmp, path)
        _sync_folder(path.parent)
    except OSError as err:
        raise _naming(err, path, tmp) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str, overwrite: bool = True, **checks) -> Path:
    """:func:`write_atomic` of ``text`` as UTF-8; a file name that is not UTF-8 (a lone surrogate
    from the file system) is written back as its own bytes, so it reads back as the same name."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name gives: escape it visibly
        data = text.encode("utf-8", "backslashreplace")
    return write_atomic(path, lambda handle: handle.write(data), overwrite, **checks)


def _mode_for(path: Path, overwrite: bool) -> int:
    """The replaced file's permission bits (a private 0600 file stays private), else the usual ones."""
    if overwrite:
        with contextlib.suppress(OSError):
            info = os.stat(path, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                return stat.S_IMODE(info.st_mode) & 0o777  # never a set-id bit on a file this process owns
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask  # mkstemp makes 0600; give a new file the usual permissions


def _naming(err: OSError, path: Path, tmp: Path | None) -> OSError:
    """The same error, naming the user's file instead of the temporary one (or nothing)."""
    if err.filename is not None and tmp is not None and os.fspath(err.filename) != os.fspath(tmp):
        return err
    renamed = OSError(err.errno, err.strerror or str(err), str(path))
    return renamed if renamed.errno is not None else err


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (a crash right after it keeps the new file)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _move_new(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path`` only if ``path`` does not exist: a hard link fails rather than replaces."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise SSCNError(f"{path} already exists; pass --overwrite to replace it, or choose another name") from None
    except OSError as err:  # a file system without hard links: check, then rename
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                             errno.ENOSYS):
            raise
        if path.exists() or path.is_symlink():
            raise SSCNError(f"{path} already exists; pass --overwrite to replace it, or choose another name") from None
        os.replace(tmp, path)


@contextlib.contextmanager
def lock_folder(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) while the block runs.

    Another process that tries to lock the same folder gets an :class:`SSCNError` at once
    instead of writing beside this one. The lock is the kernel's (``flock`` on the
    folder itself): it leaves no file behind and ends with the process, even a killed one.
    Where the system cannot lock (no ``fcntl``, some network file systems) the folder is
    used unlocked.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SSCNError(f"{what} {folder} is a file; pass a folder")
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SSCNError(f"{what} {folder} is in use by another run; wait for it to finish, "
                            "or pass another folder") from None
        except OSError:  # the file system does not support locks
            pass
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def start_log(path: str | Path) -> None:
    """Make ``path`` an empty file (atomically), so a new run's log never continues an old one."""
    write_atomic(path, lambda handle: None, overwrite=True)


def check_outside(folder: str | Path, data: str | Path, flag: str, data_flag: str) -> None:
    """Refuse an output ``folder`` inside the ``data`` folder, where it would be read as data."""
    if Path(folder).resolve().is_relative_to(Path(data).resolve()):
        raise SSCNError(f"{flag} {folder} is inside {data_flag} {data}, where it would be read as a class of "
                        f"photos; pass an {flag} outside the data folder")


@contextlib.contextmanager
def training_folder(out_dir: str | Path, data_dir: str | Path | None = None, rank: int = 0,
                    checkpoint: str = "last.pt", log: str = "metrics.jsonl") -> Iterator[Path]:
    """The output folder of a training run, held while the run uses it.

    Refused inside ``data_dir``. Locked by rank 0 (the other ranks of a distributed run
    write into it too), so a second run on the same folder stops at once instead of
    interleaving its log with this one. Without a ``checkpoint`` to resume from, the run
    starts a fresh ``log``: lines left there by a run that never saved (or by another run)
    would otherwise come before this run's step 1.
    """
    if data_dir is not None:
        check_outside(out_dir, data_dir, "out_dir", "data_dir")
    if rank != 0:
        yield Path(out_dir)
        return
    with lock_folder(out_dir, "out_dir") as folder:
        if not (folder / checkpoint).exists() and (folder / log).exists():
            start_log(folder / log)
        yield folder


def csv_text(rows) -> str:
    """Rows as CSV text (to hand to :func:`write_text`)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
