"""Output folders that are always whole, locks against colliding runs, self-repairing files.

Nothing lost, nothing mixed up
------------------------------
A run never writes into ``--out`` itself. It writes every output into a *staging folder*
beside it (``.<out>.sitefinder-new-<tag>`` in the same parent, so on the same filesystem),
the manifest last, with the SHA-256 of every output file. Only then is the staging folder
made the output folder, in one step:

1. Entries of ``--out`` that sitefinder did not write (a README, notes, a layers or cache
   folder someone put there) are carried into the staging folder as hard links (copies
   where the filesystem has none), so they survive the swap untouched.
2. Every file is flushed to disk and the staging folder is renamed to
   ``.<out>.sitefinder-ready-<tag>``: from here on it is a complete run.
3. The ready folder and ``--out`` are exchanged with one ``rename`` system call
   (``renameat2(RENAME_EXCHANGE)`` on Linux, ``renamex_np(RENAME_SWAP)`` on macOS). The
   previous run, now under the ready name, is deleted.

Why swap a whole folder: a set of files cannot change at once by replacing them one at a
time — however they are ordered, a run killed between two renames leaves ``ranked.csv``
from the new run beside ``map.html`` from the old one. Why not a new generation folder and
a symlink flip: ``--out`` must stay a plain folder that file managers, QGIS, zip and
Windows shares see as one; a ``current`` symlink is none of that. Exchanging two directory
entries is a single atomic filesystem operation, so at every instant, also after
``kill -9`` or a power cut, the name ``--out`` refers to either the previous complete
folder or the new complete one: never a mix, never a missing or 0-byte file.

Where the filesystem cannot exchange (Windows, some network filesystems) the swap is two
renames (``--out`` → ``.<out>.sitefinder-old-<tag>``, ready → ``--out``). A kill between
them leaves ``--out`` missing for a moment, never mixed; the next run puts the complete
ready folder (or, failing that, the old one) back before it does anything else.

Leftover staging, ready and old folders of killed runs are deleted by the next run into
the same ``--out``, under its lock. Because the whole folder is replaced, ``--out`` must be
a folder of sitefinder's own: a mount point, the working folder or a folder holding
thousands of other files is refused up front.

Locks
-----
``--out`` is locked by ``.<out>.sitefinder.lock`` beside it (inside, it would be swapped
away with the folder) and the layers folder by ``<layers>/.sitefinder.lock``, both with
:mod:`filelock` (an OS lock, released when a process dies, even by ``kill -9``). A run
holds both from before it reads anything until its outputs are in place; the ledger of
derived layers takes the layers lock for each update as well. A second run waits
``SITEFINDER_LOCK_WAIT`` seconds (default 10), then stops with :class:`FolderBusyError`,
which names the folder and the process holding it (its pid, written into the lock file).
Locks are always taken in the same order (output folder, then layers folder).

Self-repair
-----------
Files sitefinder keeps for itself — the metrics cache, the layers ledger, derived rasters —
are never the only copy of anything. A damaged one is reported with a
:class:`DamagedFileWarning` naming the file, discarded and rebuilt; they are written with
:func:`atomic_write` (temporary file, ``fsync``, ``os.replace``) so that a killed run
cannot damage them in the first place.

Test hook
---------
``SITEFINDER_TEST_STOP_AT=<step>[,<step>...]`` makes the process stop itself (``SIGSTOP``)
when it reaches a named step (see :func:`checkpoint`), so a test can ``kill -9`` it at an
exact moment or let it go on with ``SIGCONT``. ``SITEFINDER_TEST_NO_EXCHANGE=1`` makes the
swap take the two-rename path of systems without an atomic exchange. Both exist for the
tests only; unset, they cost one environment look-up per step.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import stat
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from filelock import FileLock, Timeout

from sitefinder.errors import InputError

MANIFEST_FILE = "manifest.json"

#: Every file name a run may write into ``--out``. A file of one of these names that the
#: new run does not write is a leftover of an older run and is not carried over.
OUTPUT_NAMES = frozenset({
    "ranked.csv", "ranked.gpkg", "map.html", "map_offline.html", "selected.csv",
    "selected.gpkg", "report.html", "report.pdf", MANIFEST_FILE,
})
# SQLite side files GDAL may leave beside a GeoPackage.
_SIDECARS = ("-wal", "-shm", "-journal")

LOCK_WAIT_ENV = "SITEFINDER_LOCK_WAIT"
DEFAULT_LOCK_WAIT_S = 10.0
TEST_STOP_ENV = "SITEFINDER_TEST_STOP_AT"
TEST_NO_EXCHANGE_ENV = "SITEFINDER_TEST_NO_EXCHANGE"
LAYERS_LOCK_FILE = ".sitefinder.lock"

#: More foreign entries than this in ``--out`` and it is not a folder of sitefinder's own.
MAX_FOREIGN_ENTRIES = 1000


# --------------------------------------------------------------------------------------
# Warnings and the test hook


class DamagedFileWarning(UserWarning):
    """A file sitefinder keeps for itself was damaged; it was discarded and is rebuilt."""


def warn_damaged(path: str | Path, problem: str, action: str) -> None:
    """Warn that ``path`` is damaged (``problem``) and what is done about it (``action``).

    Parameters
    ----------
    path : str or Path
        The damaged file.
    problem : str
        What is wrong with it.
    action : str
        What sitefinder does instead (e.g. "discarded; measuring again").
    """
    warnings.warn(f"{path}: {problem}; {action}", DamagedFileWarning, stacklevel=3)


_stopped_at: set[str] = set()


def checkpoint(step: str) -> None:
    """Test hook: stop this process at ``step`` when ``SITEFINDER_TEST_STOP_AT`` names it.

    The process prints a line to standard error and sends itself ``SIGSTOP``, the first
    time it reaches each named step; the test then kills it (``SIGKILL``) or lets it go on
    (``SIGCONT``). Steps, in order: ``measure`` (locks held, nothing measured yet),
    ``derived-written`` (a derived layer or raster written, its ledger entry not yet),
    ``write-gpkg`` (ranked.gpkg half written), ``write-maps`` (tables written, maps not),
    ``maps-written``, ``commit`` (staging folder complete, not yet swapped in),
    ``renamed-away`` (two-rename swap only: the output folder renamed away, the new one
    not yet in place), ``swapped`` (new folder in place, old one not yet deleted).

    Parameters
    ----------
    step : str
        Name of the step reached.
    """
    wanted = os.environ.get(TEST_STOP_ENV)
    if not wanted or step not in wanted.split(",") or step in _stopped_at:
        return
    if not hasattr(signal, "SIGSTOP"):  # pragma: no cover - Windows has no SIGSTOP
        return
    _stopped_at.add(step)
    print(f"sitefinder: test hook: stopped at '{step}' (pid {os.getpid()})",
          file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)


# --------------------------------------------------------------------------------------
# Atomic files


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames) to disk; a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_TEMP_MARK = ".sitefinder-tmp-"
_TEMP_NAME = re.compile(r"\..+\.sitefinder-tmp-(?P<pid>\d+)-[0-9a-f]{8}(\.[A-Za-z0-9]+)?")


def temp_name(path: Path, suffix: str = ".tmp") -> Path:
    """A temporary name beside ``path`` that names this process (for leftover clean-up)."""
    return path.with_name(
        f".{path.stem}{_TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    )


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file so that it is either the old or the whole new one, never partial.

    Parameters
    ----------
    path : str or Path
        The file to (re)write.
    write : callable
        Called with a binary file object open on a temporary file beside ``path``.

    Returns
    -------
    Path
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_dead_temp_files(folder: str | Path, min_age_s: float = 0.0) -> None:
    """Delete temporary files (:func:`temp_name`) left in ``folder`` by processes now dead.

    Parameters
    ----------
    folder : str or Path
        The folder to tidy.
    min_age_s : float
        Leave files younger than this (for folders no lock guards, which a process on
        another machine might be writing to).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    now = time.time()
    for path in folder.iterdir():
        match = _TEMP_NAME.fullmatch(path.name)
        if match is None or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if path.is_file() and now - path.stat().st_mtime >= min_age_s:
                path.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def read_cache(
    path: str | Path,
    check: Callable[[Any], bool] | None = None,
    what: str = "the cached metrics",
    action: str = "discarded; measuring again",
) -> Any | None:
    """Load a pickled cache file; a damaged one is reported, deleted and reads as None.

    Parameters
    ----------
    path : str or Path
        The cache file (may be missing).
    check : callable, optional
        Returns False for content of the wrong shape (e.g. from another version).
    what : str
        What the file holds, for the warning (e.g. "the cached OSM extract").
    action : str
        What happens instead, for the warning.

    Returns
    -------
    object or None
        The cached value, or None when there is none (or it was damaged).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            value = pickle.load(f)
        if check is not None and not check(value):
            raise ValueError("content of an unexpected shape")
    # Any failure at all: a cache is never the only copy of anything, so whatever is wrong
    # with it (truncated, overwritten, written by another version), measuring again repairs it.
    except Exception as exc:  # noqa: BLE001
        warn_damaged(path, f"{what} cannot be read ({type(exc).__name__}: {exc})", action)
        path.unlink(missing_ok=True)
        return None
    return value


def write_cache(path: str | Path, value: Any) -> Path:
    """Pickle ``value`` to ``path`` atomically (folder created when missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temp_files(path.parent, min_age_s=3600)
    return atomic_write(path, lambda f: pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL))


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes as they are now (never from a cache)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# Locks


class FolderBusyError(InputError):
    """Another process holds the lock of a folder this run needs."""


def lock_wait_seconds(wait: float | None = None) -> float:
    """Seconds to wait for a busy folder: ``wait``, else ``SITEFINDER_LOCK_WAIT``, else 10."""
    if wait is not None:
        return float(wait)
    text = os.environ.get(LOCK_WAIT_ENV, "")
    try:
        return float(text) if text.strip() else DEFAULT_LOCK_WAIT_S
    except ValueError:
        raise InputError(
            f"{LOCK_WAIT_ENV}='{text}' is not a number of seconds",
            where=f"environment variable {LOCK_WAIT_ENV}",
            hint="Set it to a number such as 30, or unset it",
        ) from None


_locks: dict[str, FileLock] = {}


def _write_owner(fd: int) -> None:
    """Write who holds the lock into the lock file, for the message of a waiting run."""
    owner = {
        "pid": os.getpid(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "since": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(owner).encode())


def _read_owner(lock_file: Path) -> dict[str, Any]:
    try:
        owner = json.loads(lock_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _lock(lock_file: Path) -> FileLock:
    # One instance per lock file in a process: the lock is then re-entrant (the ledger
    # takes the layers lock that run() already holds), where a second instance on the
    # same file would wait for its own process.
    key = os.path.normcase(str(lock_file))
    if key not in _locks:
        _locks[key] = FileLock(lock_file, on_acquired=_write_owner)
    return _locks[key]


@contextlib.contextmanager
def folder_lock(
    lock_file: str | Path,
    folder: str | Path,
    what: str,
    option: str,
    wait: float | None = None,
    *,
    required: bool = True,
) -> Iterator[None]:
    """Hold the lock ``lock_file`` that guards ``folder``; wait a little, then refuse.

    Parameters
    ----------
    lock_file : str or Path
        The lock file (its folder is created when missing).
    folder : str or Path
        The folder it guards, for the message.
    what : str
        What the folder is, for the message ("output folder").
    option : str
        The command-line option that names the folder ("--out").
    wait : float, optional
        Seconds to wait (default :func:`lock_wait_seconds`).
    required : bool
        When False, a folder this user cannot write to is used without a lock (this run
        cannot change anything in it either).

    Raises
    ------
    FolderBusyError
        Another process held the lock for longer than ``wait``.
    InputError
        The lock file cannot be created (and ``required``).
    """
    lock_file = Path(lock_file)
    wait = lock_wait_seconds(wait)
    lock: FileLock | None = None
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = _lock(lock_file)
        lock.acquire(timeout=wait)
    except Timeout:
        owner = _read_owner(lock_file)
        who = f"process {owner['pid']}" if "pid" in owner else "another process"
        details = [f"`{owner['command']}`"] if owner.get("command") else []
        if owner.get("since"):
            details.append(f"since {owner['since']}")
        if details:
            who += f" ({', '.join(details)})"
        raise FolderBusyError(
            f"the {what} is in use by another sitefinder run: {who}; waited {wait:g} s",
            path=folder,
            hint=f"Wait until that run has finished and run again, or give another {option} "
            f"(set {LOCK_WAIT_ENV} to wait longer)",
        ) from None
    except OSError as exc:
        if required or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise InputError(
                f"cannot create the lock file {lock_file} ({exc.strerror})",
                path=folder,
                hint=f"Make the {what} writable or give another {option}",
            ) from None
        lock = None  # not ours to write: read without a lock
    try:
        yield
    finally:
        if lock is not None:
            if lock.lock_counter == 1:
                # Last hold: remove the file before unlocking so that no lock file is left
                # beside the user's folders. filelock checks that a file it has locked still
                # has a name, so a run waiting on this one retries with a fresh file.
                with contextlib.suppress(OSError):
                    lock_file.unlink()
            lock.release()


def layers_lock(layers_dir: str | Path, wait: float | None = None):
    """The lock of a layers folder (see :func:`folder_lock`)."""
    layers_dir = Path(layers_dir).resolve()
    # A shared, read-only layers folder may still be read: every layer in it is current.
    return folder_lock(layers_dir / LAYERS_LOCK_FILE, layers_dir, "layers folder", "--layers",
                       wait, required=False)


# --------------------------------------------------------------------------------------
# The output folder


def _marked_read_only(folder: Path) -> bool:
    """True for a folder nobody may write: by its permission bits or for this user.

    The bits are checked as well as access(2) because the superuser may write anywhere,
    yet a folder set read-only means "leave this alone" for everyone.
    """
    mode = stat.S_IMODE(folder.stat().st_mode)
    return not os.access(folder, os.W_OK | os.X_OK) or not mode & 0o222


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing directory entries atomically; False where the system cannot."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "renameat2", None)
        if fn is None:  # pragma: no cover - glibc < 2.28
            return False
        at_fdcwd, rename_exchange = -100, 2
        rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    elif sys.platform == "darwin":  # pragma: no cover - not on the CI machine
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "renamex_np", None)
        if fn is None:
            return False
        rename_swap = 2
        rc = fn(os.fsencode(a), os.fsencode(b), rename_swap)
    else:  # pragma: no cover
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` at ``dst`` with hard links (copies where links are impossible)."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        os.mkdir(dst)
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
        shutil.copystat(src, dst)
    elif src.is_file():
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    # Sockets, pipes and devices are not carried over: nothing a run would put there.


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(root))


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The ``manifest.json`` of an output folder, or None when it has none (or a bad one)."""
    path = Path(folder) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def check_output_folder(folder: str | Path) -> list[str]:
    """Problems of an output folder: files missing, empty or unlike the manifest's checksum.

    Parameters
    ----------
    folder : str or Path
        An output folder.

    Returns
    -------
    list of str
        Empty when the manifest exists and every file it lists has its checksum.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or not isinstance(manifest.get("files"), dict):
        return [f"{folder / MANIFEST_FILE}: missing, unreadable or without file checksums"]
    problems = []
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size == 0:
            problems.append(f"{path}: empty")
        elif sha256_of(path) != entry.get("sha256"):
            problems.append(f"{path}: checksum differs from the manifest")
    return problems


def _output_names(manifest: dict[str, Any] | None) -> set[str]:
    """File names a manifest says its run wrote."""
    if not manifest:
        return set()
    names = set(manifest.get("files") or {})
    outputs = manifest.get("outputs")
    if isinstance(outputs, list):
        names |= {Path(str(p)).name for p in outputs}
    return names


def _foreign(names: list[str], ours: set[str]) -> list[str]:
    ours = set(ours)
    ours |= {n + s for n in list(ours) for s in _SIDECARS}
    return [n for n in names if n not in ours]


class OutputFolder:
    """An output folder replaced as a whole at the end of each run.

    Checks up front that ``path`` can be one (see :meth:`check`). Use :meth:`transaction`
    to get the staging folder to write into, then :meth:`commit` it.

    Parameters
    ----------
    path : str or Path
        The ``--out`` folder as the user gave it (created on commit when missing).

    Raises
    ------
    InputError
        ``path`` is a file, a mount point, read-only, inside an unwritable folder, the
        working folder (or holds it) or a folder with many files sitefinder did not write.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.check()
        self.real = self.path.resolve()
        self._staging: Path | None = None

    @property
    def _prefix(self) -> str:
        return f".{self.real.name}.sitefinder-"

    @property
    def lock_file(self) -> Path:
        """The lock file beside the folder (inside, it would be swapped away with it)."""
        return self.real.parent / f".{self.real.name}.sitefinder.lock"

    def check(self) -> None:
        """Refuse an output folder that cannot be replaced safely (see the class)."""
        path = self.path
        where = "--out"
        if path.exists() and not path.is_dir():
            raise InputError(
                "the output folder is a file, not a folder", path=path, where=where,
                hint="Give --out the name of a folder (created when missing), or move the "
                "file away",
            )
        real = path.resolve()
        if real.exists():
            if os.path.ismount(real):
                raise InputError(
                    "the output folder is a mount point; sitefinder replaces the whole output "
                    "folder at the end of a run and cannot replace a mount point",
                    path=path, where=where,
                    hint=f"Give a folder inside it, e.g. --out {path / 'sitefinder'}",
                )
            cwd = Path.cwd().resolve()
            if real == cwd or real in cwd.parents:
                raise InputError(
                    "the output folder is the folder sitefinder runs in (or holds it); "
                    "sitefinder replaces the whole output folder at the end of a run",
                    path=path, where=where,
                    hint="Give a folder of its own, e.g. --out output",
                )
            if _marked_read_only(real):
                raise InputError(
                    "the output folder is read-only; its previous outputs are left as they are",
                    path=path, where=where,
                    hint="Make the folder writable, or give another --out",
                )
            self._check_foreign(real)
        ancestor = real.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise InputError(
                f"the output folder cannot be created: {ancestor} is a file",
                path=path, where=where, hint="Give --out a path under a folder",
            )
        if _marked_read_only(ancestor):
            raise InputError(
                f"cannot write in {ancestor}, the folder that holds the output folder: "
                "sitefinder writes a run into a temporary folder beside the output folder and "
                "puts it in place whole when it is complete",
                path=path, where=where,
                hint=f"Make {ancestor} writable, or give an --out in a folder you can write to",
            )

    def _check_foreign(self, real: Path) -> None:
        ours = OUTPUT_NAMES | _output_names(read_manifest(real))
        count = 0
        for name in _foreign(os.listdir(real), ours):
            entry = real / name
            if entry.is_dir() and not entry.is_symlink():
                count += sum(1 + len(files) for _, _, files in os.walk(entry))
            else:
                count += 1
            if count > MAX_FOREIGN_ENTRIES:
                raise InputError(
                    f"the output folder holds more than {MAX_FOREIGN_ENTRIES} files that "
                    "sitefinder did not write; sitefinder replaces the whole output folder at "
                    "the end of a run (carrying other files over), so it needs a folder of "
                    "its own",
                    path=self.path, where="--out",
                    hint=f"Give a new folder, e.g. --out {self.path / 'sitefinder'}",
                )

    @contextlib.contextmanager
    def transaction(self, wait: float | None = None) -> Iterator[Path]:
        """Lock the folder, tidy up after killed runs and yield an empty staging folder.

        Write every output into the staging folder, the manifest last, then call
        :meth:`commit`. Leaving the block without committing (an error) deletes the
        staging folder and leaves the output folder as it was.

        Parameters
        ----------
        wait : float, optional
            Seconds to wait for another run's lock (see :func:`folder_lock`).

        Yields
        ------
        Path
            The staging folder, beside the output folder.
        """
        parent = self.real.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create {parent} ({exc.strerror})", path=self.path,
                             where="--out") from None
        with folder_lock(self.lock_file, self.path, "output folder", "--out", wait):
            self.recover()
            staging = parent / f"{self._prefix}new-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                os.mkdir(staging)
            except OSError as exc:
                raise InputError(
                    f"cannot create the temporary folder {staging.name} beside the output "
                    f"folder ({exc.strerror})",
                    path=self.path, where="--out",
                    hint=f"Make {parent} writable, or give an --out in a folder you can write to",
                ) from None
            self._staging = staging
            try:
                yield staging
            finally:
                # Not committed (an error): drop the staging folder, or the ready folder
                # it had become; the output folder was not touched.
                for path in {staging, self._staging}:
                    if path is not None and path.exists():
                        shutil.rmtree(path, ignore_errors=True)
                self._staging = None

    def recover(self) -> None:
        """Undo what killed runs left behind (call with the lock held).

        When the output folder is missing (a run was killed between the two renames of
        the fallback swap), the newest complete ready folder becomes it, else the previous
        folder is put back. Every other staging, ready or old folder is deleted.
        """
        parent = self.real.parent
        leftovers = sorted(
            (p for p in parent.glob(self._prefix + "*") if p.is_dir() and not p.is_symlink()),
            key=lambda p: p.stat().st_mtime, reverse=True,
        )
        if not self.real.exists():
            ready = [p for p in leftovers if p.name.startswith(self._prefix + "ready-")
                     and not check_output_folder(p)]
            old = [p for p in leftovers if p.name.startswith(self._prefix + "old-")]
            for candidate in ready[:1] or old[:1]:
                os.rename(candidate, self.real)
                _fsync_dir(parent)
                leftovers.remove(candidate)
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)

    def commit(self) -> None:
        """Put the staging folder in place of the output folder, whole (module docstring).

        The staging folder must hold every output and, written last, the manifest.
        """
        staging = self._staging
        if staging is None:
            raise RuntimeError("commit() outside transaction()")
        real, parent = self.real, self.real.parent
        if real.exists():
            # Keep what others put in the folder; drop the previous run's own files.
            written = set(os.listdir(staging))
            ours = OUTPUT_NAMES | written | _output_names(read_manifest(real))
            for name in _foreign(os.listdir(real), ours):
                _link_tree(real / name, staging / name)
            mode = stat.S_IMODE(real.stat().st_mode)
        else:
            mode = 0o777 & ~_umask()
        os.chmod(staging, mode)
        _fsync_tree(staging)
        tag = staging.name[len(self._prefix + "new-"):]
        ready = parent / f"{self._prefix}ready-{tag}"
        os.rename(staging, ready)
        self._staging = ready
        _fsync_dir(parent)
        checkpoint("commit")
        if not real.exists():
            os.rename(ready, real)
            old = None
        elif not os.environ.get(TEST_NO_EXCHANGE_ENV) and _exchange(ready, real):
            old = ready  # the exchange left the previous run under the ready name
        else:
            old = parent / f"{self._prefix}old-{tag}"
            os.rename(real, old)
            checkpoint("renamed-away")
            try:
                os.rename(ready, real)
            except OSError:
                os.rename(old, real)  # put the previous run back before reporting
                raise
        _fsync_dir(parent)
        checkpoint("swapped")
        self._staging = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------
# One study per output folder


@dataclass(frozen=True)
class StudyInputs:
    """What a study is measured from: the inputs an output folder belongs to.

    Attributes
    ----------
    plots, osm : Path
        Plot file and OSM extract.
    scenario : Path or None
        Scenario YAML; None for the default (the demo scenario on the demo data).
    plots_crs : str or None
        CRS given for a plot file that declares none.
    id_column : str
        Plot id column.
    layers : Path
        Layers folder.
    scenario_in_code : bool
        The study's scenario was made in code, not read from a file, so it cannot be
        read back from the manifest.
    """

    plots: Path
    osm: Path
    scenario: Path | None
    plots_crs: str | None
    id_column: str
    layers: Path
    scenario_in_code: bool = False

    @classmethod
    def new(cls, plots: str | Path, osm: str | Path) -> StudyInputs:
        """A study of ``plots`` and ``osm`` with every other input at its default."""
        return cls(Path(plots), Path(osm), None, None, "plot_id", Path("layers"))

    def with_scenario(self, scenario: Path | None) -> StudyInputs:
        """The same inputs with the scenario file actually used (None: made in code)."""
        return replace(self, scenario=scenario, scenario_in_code=scenario is None)

    def record(self) -> dict[str, Any]:
        """The ``study`` entry of the manifest (absolute paths, so any folder can rerun it)."""
        return {
            "plots": str(self.plots.resolve()),
            "osm": str(self.osm.resolve()),
            "scenario": str(self.scenario.resolve()) if self.scenario is not None else None,
            "scenario_in_code": self.scenario_in_code,
            "plots_crs": self.plots_crs,
            "id_column": self.id_column,
            "layers": str(self.layers.resolve()),
        }


def recorded_study(folder: str | Path) -> StudyInputs | None:
    """The study an output folder holds, from its manifest (None for a new folder).

    Manifests written before the ``study`` entry existed give their plots and OSM inputs.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    study = manifest.get("study")
    if not isinstance(study, dict):
        inputs = manifest.get("inputs") or {}
        try:
            study = {"plots": inputs["plots"]["path"], "osm": inputs["osm"]["path"],
                     "scenario": (inputs.get("scenario") or {}).get("path")}
        except (KeyError, TypeError):
            return None
    if not study.get("plots") or not study.get("osm"):
        return None
    return StudyInputs(
        plots=Path(study["plots"]),
        osm=Path(study["osm"]),
        scenario=Path(study["scenario"]) if study.get("scenario") else None,
        plots_crs=study.get("plots_crs"),
        id_column=study.get("id_column") or "plot_id",
        layers=Path(study.get("layers") or "layers"),
        scenario_in_code=bool(study.get("scenario_in_code")),
    )


def _same_path(a: str | Path | None, b: str | Path | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Path(a).resolve() == Path(b).resolve()


def resolve_study(
    out_dir: str | Path,
    *,
    plots: str | Path | None,
    osm: str | Path | None,
    scenario: str | Path | None,
    plots_crs: str | None,
    id_column: str | None,
    layers: str | Path | None,
    defaults: StudyInputs,
    command: str | None = None,
) -> tuple[StudyInputs, str]:
    """The inputs of a run into ``out_dir``: those given, the rest from the folder's study.

    Parameters
    ----------
    out_dir : str or Path
        The output folder; its manifest names the study it holds.
    plots, osm, scenario, plots_crs, id_column, layers
        What was given (None = not given).
    defaults : StudyInputs
        Used for what is neither given nor recorded (the bundled demo data).
    command : str, optional
        ``"select"`` or ``"report"``: these add to the study in the folder, so inputs that
        differ from it are refused. Any other value (``run``) starts a new study.

    Returns
    -------
    inputs : StudyInputs
    source : str
        Where the inputs not given came from, for the user ("the study in output/ ...").

    Raises
    ------
    InputError
        ``command`` is select/report and a given input differs from the folder's study.
    """
    recorded = recorded_study(out_dir)
    base = recorded or defaults
    if recorded is not None:
        source = f"the study in {out_dir} ({Path(out_dir) / MANIFEST_FILE})"
    else:
        source = "the bundled demo data"
    if command in ("select", "report") and recorded is not None:
        given = {"--plots": (plots, recorded.plots), "--osm": (osm, recorded.osm),
                 "--scenario": (scenario, recorded.scenario)}
        differ = [opt for opt, (g, r) in given.items() if g is not None and not _same_path(g, r)]
        if plots_crs is not None and plots_crs != recorded.plots_crs:
            differ.append("--plots-crs")
        if id_column is not None and id_column != recorded.id_column:
            differ.append("--id-column")
        if not differ and scenario is None and recorded.scenario_in_code:
            raise InputError(
                "the study in this folder was run with a scenario made in code, not read from "
                "a file, so it cannot be read back",
                path=out_dir, where="--out",
                hint="Give the scenario with --scenario (save it with Scenario.to_yaml), or "
                "give another --out",
            )
        if differ:
            held = f"plots {recorded.plots}, OSM {recorded.osm}, scenario " + (
                str(recorded.scenario) if recorded.scenario else "the default")
            raise InputError(
                f"{', '.join(differ)} differ from the study this folder holds ({held}); "
                f"`sitefinder {command}` works on the study in its output folder and would "
                "mix two studies in one folder",
                path=out_dir, where="--out",
                hint=f"Leave out {', '.join(differ)} to use the folder's study, or give another "
                "--out for the new inputs",
            )
    # The scenario belongs to the place (the OSM extract), the CRS and id column to the
    # plot file: new plots keep the folder's scenario, a new extract starts from the default.
    same_osm = osm is None or _same_path(osm, base.osm)
    same_plots = plots is None or _same_path(plots, base.plots)
    inputs = StudyInputs(
        plots=Path(plots) if plots is not None else base.plots,
        osm=Path(osm) if osm is not None else base.osm,
        scenario=Path(scenario) if scenario is not None else (
            base.scenario if same_osm else None),
        plots_crs=plots_crs if plots_crs is not None else (
            base.plots_crs if same_plots else None),
        id_column=id_column if id_column is not None else (
            base.id_column if same_plots else "plot_id"),
        layers=Path(layers) if layers is not None else base.layers,
    )
    return inputs, source


def check_inputs_readable(plots: Path, osm: Path, input_files: dict[str, Path]) -> None:
    """Refuse missing plot/OSM files and unreadable rasters before any heavy work.

    Parameters
    ----------
    plots, osm : Path
        Plot file and OSM extract.
    input_files : dict of str to Path
        The scenario's other inputs (:meth:`Scenario.input_files`); GeoTIFFs among them
        are opened and read at two corners, which finds a truncated file.

    Raises
    ------
    InputError
        A file is missing or a raster cannot be read.
    """
    if not Path(plots).exists():
        raise InputError("the plot file does not exist", path=plots,
                         hint="Check the path given with --plots")
    if not Path(osm).exists():
        raise InputError(
            "the OpenStreetMap file does not exist", path=osm,
            hint="Check the path given with --osm, or download an extract for your "
            "municipality (.osm.pbf) from an OSM extract service",
        )
    for role, path in input_files.items():
        if Path(path).suffix.lower() not in (".tif", ".tiff") or not Path(path).is_file():
            continue  # missing files are named by Scenario.check_input_files
        problem = raster_problem(path)
        if problem:
            raise InputError(
                f"the raster cannot be read ({problem})", path=path,
                where=f"scenario input '{role}'",
                hint="Open it in QGIS to check it, copy it again, or point the scenario at "
                "another file",
            )


def raster_problem(path: str | Path, *, whole: bool = False) -> str | None:
    """Why a raster file cannot be read, or None when it can.

    Parameters
    ----------
    path : str or Path
        The raster.
    whole : bool
        Read every pixel (finds any damage); otherwise only the first and last pixel of
        each band, which finds a truncated file at little cost.
    """
    import rasterio
    from rasterio.windows import Window

    try:
        with rasterio.open(path) as src:
            if whole:
                src.read()
            else:
                last = Window(max(src.width - 1, 0), max(src.height - 1, 0), 1, 1)
                for band in range(1, src.count + 1):
                    src.read(band, window=Window(0, 0, 1, 1))
                    src.read(band, window=last)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "cannot be read"
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def print_used_inputs(
    inputs: StudyInputs, source: str, *, given: tuple[str, ...] = (), file=None
) -> None:
    """Tell the user which plot and OSM files a run uses when they were not given.

    ``given`` names the inputs the user gave (``"plots"``, ``"osm"``): those are shown as
    the user's own, the rest as taken from ``source``.
    """
    shown = {k: _shown_path(getattr(inputs, k)) for k in ("plots", "osm", "scenario")}
    taken = [f"{k if k != 'osm' else 'OSM'} {shown[k]}" for k in ("plots", "osm")
             if k not in given]
    if inputs.scenario and "scenario" not in given:
        taken.append(f"scenario {shown['scenario']}")
    own = [f"{k if k != 'osm' else 'OSM'} {shown[k]}" for k in ("plots", "osm") if k in given]
    print(f"Using {source}: {', '.join(taken)}"
          + (f" (given: {', '.join(own)})" if own else ""),
          file=file or sys.stdout, flush=True)


def _shown_path(path: Path | None) -> str:
    """A path as a user reads it: relative to the working folder when it lies inside."""
    if path is None:
        return ""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)

