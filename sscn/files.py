"""Files in and out: inputs that must be regular files, results written atomically and
never over an input or an existing file unasked, and a lock on a folder a run writes.

A result is written to a temporary file in its own folder, synced, then renamed into
place, so an interrupted or failed write leaves the previous file (or nothing) behind,
never a truncated one.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from .errors import SSCNError

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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def check_output(path: str | Path, inputs: Iterable[tuple[str, str | Path]] = (), overwrite: bool = False,
                 flag: str = "-o") -> Path:
    """Refuse an output path that would destroy data; returns it as a ``Path``.

    Refused: one of the ``inputs`` (``(role, path)`` pairs; the same file under another
    name or a hard link included), a symbolic link (writing through it would change
    another file), a folder, and an existing file unless ``overwrite``.
    """
    path = Path(path)
    for role, source in inputs:
        if _same_file(path, Path(source)):
            raise SSCNError(f"{flag} {path} is the {role}; the result must not replace an input, choose another {flag}")
    if path.is_symlink():
        raise SSCNError(f"{flag} {path} is a symbolic link; pass the path of a new file "
                        "(sscn never writes through links)")
    if path.is_dir():
        raise SSCNError(f"{flag} {path} is a folder; pass a file name")
    if path.exists() and not overwrite:
        raise SSCNError(f"{path} already exists; pass --overwrite to replace it, or choose another {flag}")
    return path


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None], overwrite: bool = False) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, sync it, then move it to ``path``.

    Without ``overwrite`` the move fails (an :class:`SSCNError`) when ``path`` exists by
    then, even if it appeared while writing. Any failure, an interrupt included, removes
    the temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_new(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


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
