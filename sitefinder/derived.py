"""Files sitefinder derives into the layers folder, and whether a user has taken one over.

Thematic layers (GeoPackages) and derived rasters (the OSM noise proxy, slope) live in the
layers folder so a planner can open, edit or replace them. One ledger,
``sitefinder-derived.json``, records for every file sitefinder wrote the key of the
inputs it was built from and the file's checksum. From that, a file is:

* ``missing`` — build it;
* ``current`` — sitefinder's own, built from these inputs: use it;
* ``stale`` — sitefinder's own, untouched, but built from other inputs: rebuild it;
* ``user`` — edited in QGIS or put there by hand: use it as it is and never overwrite it.

Whose file is it? The rule
--------------------------
Every file sitefinder derives carries a *stamp* inside it (GeoPackage: the
``description`` of its tables in ``gpkg_contents``; GeoTIFF: the tag
``SITEFINDER_DERIVED``) with a checksum of its *content* — every row of every table, or
every pixel with the grid and CRS — and of the build key. A file is sitefinder's own when

1. its checksum is the one the ledger recorded; or
2. its stamp's content checksum is still the file's content, whatever the ledger says or
   has lost: a missing ledger entry never makes a derived file look user-edited, and a
   lost entry is put back. Editing features or pixels changes the content, so an edited
   file fails this check; or
3. a build of it was begun (the ledger marks a file as ``building`` when :meth:`state`
   answers ``missing`` or ``stale``) and never recorded, because the run was killed, and
   the file is that first build's or a whole file without a stamp (:meth:`record` stamps
   it last). A user's edit of an earlier build still carries that build's stamp.

A file that could be read when it was recorded and now cannot (truncated, damaged) holds
no edit to keep: it is reported and built again. Anything else is the user's.

The ledger is rewritten atomically (temporary file and ``os.replace``) under the layers
folder's lock, re-read inside the lock so that concurrent runs keep each other's entries.
A ledger that is not valid JSON is reported with a warning and replaced by an empty one;
rule 2 then recognises the files again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Literal

from sitefinder.errors import SitefinderError
from sitefinder.outfolder import (
    atomic_write_text,
    checkpoint,
    layers_lock,
    warn_damaged,
)
from sitefinder.sources.osm import file_sha256

LEDGER_FILE = "sitefinder-derived.json"
STAMP_TAG = "SITEFINDER_DERIVED"

State = Literal["missing", "current", "stale", "user"]


class _UnreadableError(Exception):
    """A derived file whose content cannot be read."""


def content_digest(path: str | Path) -> str | None:
    """Checksum of a derived file's content, without sitefinder's stamp.

    Parameters
    ----------
    path : str or Path
        A GeoPackage or GeoTIFF.

    Returns
    -------
    str or None
        None for other file types (they carry no stamp).

    Raises
    ------
    _UnreadableError
        The file cannot be read (truncated, damaged, not what its name says).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".gpkg":
            return _gpkg_digest(path)
        if suffix in (".tif", ".tiff"):
            return _tif_digest(path)
    # Whatever the reader raises (sqlite, GDAL, numpy), the file cannot be read.
    except Exception as exc:  # noqa: BLE001
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _UnreadableError(reason) from exc
    return None


def _gpkg_connect(path: Path, mode: str) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _gpkg_digest(path: Path) -> str:
    h = hashlib.sha256()
    con = _gpkg_connect(path, "ro")
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM gpkg_contents ORDER BY table_name")]
        for table in tables:
            cursor = con.execute(f"SELECT * FROM {_quote(table)} ORDER BY rowid")
            h.update(repr((table, [d[0] for d in cursor.description])).encode())
            for row in cursor:
                h.update(repr(row).encode())
    finally:
        con.close()
    return h.hexdigest()


def _tif_digest(path: Path) -> str:
    import rasterio

    h = hashlib.sha256()
    with rasterio.open(path) as src:
        h.update(repr((src.count, src.width, src.height, src.dtypes, src.nodatavals,
                       tuple(src.transform))).encode())
        h.update((src.crs.to_wkt() if src.crs else "").encode())
        h.update(src.read().tobytes())
    return h.hexdigest()


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_stamp(path: str | Path) -> dict[str, Any] | None:
    """The stamp sitefinder wrote inside a derived file, or None."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".gpkg":
            con = _gpkg_connect(path, "ro")
            try:
                texts = [r[0] for r in con.execute("SELECT description FROM gpkg_contents")]
            finally:
                con.close()
        elif suffix in (".tif", ".tiff"):
            import rasterio

            with rasterio.open(path) as src:
                texts = [src.tags().get(STAMP_TAG)]
        else:
            return None
    # An unreadable file has no stamp to speak of; content_digest says why.
    except Exception:  # noqa: BLE001
        return None
    for text in texts:
        try:
            stamp = json.loads(text or "").get(STAMP_TAG)
        except (ValueError, AttributeError):
            continue
        if isinstance(stamp, dict):
            return stamp
    return None


def write_stamp(path: str | Path, key: str) -> bool:
    """Write the stamp (content checksum and build key) inside a derived file.

    Returns
    -------
    bool
        False for a file type that carries no stamp, or when it could not be written
        (the ledger entry alone then vouches for the file).
    """
    path = Path(path)
    try:
        digest = content_digest(path)
    except _UnreadableError:
        return False
    if digest is None:
        return False
    text = json.dumps({STAMP_TAG: {"content": digest, "key": _key_digest(key)}})
    try:
        if path.suffix.lower() == ".gpkg":
            con = _gpkg_connect(path, "rw")
            try:
                con.execute("UPDATE gpkg_contents SET description = ?", (text,))
                con.commit()
            finally:
                con.close()
        else:
            import rasterio

            with rasterio.open(path, "r+") as dst:
                dst.update_tags(**{STAMP_TAG: text})
    # The stamp is the second line of defence; a file another program holds open (sqlite
    # "database is locked") is still recorded in the ledger.
    except Exception:  # noqa: BLE001
        return False
    return True


class Ledger:
    """The record of derived files in one layers folder.

    Parameters
    ----------
    folder : str or Path
        The layers folder (created when a file is recorded).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LEDGER_FILE
        self._entries: dict[str, dict[str, str]] = self._read(warn=True)

    def _read(self, *, warn: bool = False) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(entries, dict) or not all(
                isinstance(v, dict) for v in entries.values()
            ):
                raise ValueError("not a mapping of file names to entries")
        except (OSError, ValueError) as exc:
            if warn:
                warn_damaged(
                    self.path, f"the ledger of derived layers cannot be read ({exc})",
                    "replaced by an empty one; derived files are recognised by the checksum "
                    "stored inside them",
                )
                self._replace_damaged()
            return {}
        return entries

    def _replace_damaged(self) -> None:
        # Replace it at once so that every later reader in this run and the next does not
        # warn again; a read-only folder keeps the damaged file (and this run copes).
        with contextlib.suppress(OSError, SitefinderError), layers_lock(self.folder):
            atomic_write_text(self.path, "{}\n")

    def _update(self, name: str, entry: dict[str, str]) -> None:
        """Set one entry: under the lock, on the ledger as it is on disk now."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with layers_lock(self.folder):
            entries = self._read()
            entries[name] = entry
            atomic_write_text(self.path, json.dumps(entries, indent=2, sort_keys=True) + "\n")
            self._entries = entries

    def entries(self) -> dict[str, dict[str, str]]:
        """A copy of the entries, keyed by file name."""
        return {k: dict(v) for k, v in self._entries.items()}

    def state(self, file: str | Path, key: str) -> State:
        """State of ``file`` for inputs summarised by ``key`` (see the module docstring).

        ``missing`` and ``stale`` tell the caller to build the file now: the ledger marks
        it as being built until :meth:`record`.
        """
        file = Path(file)
        state = self._state(file, key)
        if state in ("missing", "stale"):
            entry = dict(self._entries.get(file.name, {}))
            if entry.get("building") != key:
                entry["building"] = key
                self._update(file.name, entry)
        return state

    def _state(self, file: Path, key: str) -> State:
        if not file.exists():
            return "missing"
        entry = self._entries.get(file.name) or {}
        sha = file_sha256(file)
        if entry.get("sha256") == sha:
            # The bytes sitefinder recorded (also when a build was announced, not started).
            return "current" if entry.get("key") == key else "stale"
        # The bytes are not those recorded (or nothing is recorded): look inside.
        try:
            content = content_digest(file)
            readable = True
        except _UnreadableError as exc:
            content, readable, reason = None, False, str(exc)
        stamp = read_stamp(file) if content is not None else None
        if stamp is not None and stamp.get("content") == content:
            # Sitefinder's own, untouched since it was stamped; the ledger lost track.
            if stamp.get("key") != _key_digest(key):
                return "stale"
            # Current: put the lost entry back (when the folder can be written; the stamp
            # gives the same answer next time otherwise).
            with contextlib.suppress(OSError, SitefinderError):
                self._update(file.name, {"key": key, "sha256": sha, "content": content})
            return "current"
        if "building" in entry and (
            "sha256" not in entry or (readable and content is not None and stamp is None)
        ):
            # A build killed before it was recorded: its first build, or a whole new file
            # without the stamp record() adds. A user's edit of an earlier build would
            # still carry that build's stamp.
            return "stale"
        if not readable and entry.get("content"):
            # It could be read when sitefinder recorded it: damaged since, no edit to keep.
            warn_damaged(file, f"the derived file cannot be read ({reason})",
                         "discarded; building it again")
            return "stale"
        return "user"

    def record(self, file: str | Path, key: str, *, staged: str | Path | None = None) -> None:
        """Note that sitefinder has just written ``file`` from inputs ``key``.

        Parameters
        ----------
        file : str or Path
            The derived file.
        key : str
            Key of the inputs it was built from.
        staged : str or Path, optional
            Where the file was actually written (a temporary name in the same folder): it
            is stamped there and then moved onto ``file`` atomically, so ``file`` is never
            half-written.
        """
        file = Path(file)
        written = Path(staged) if staged is not None else file
        write_stamp(written, key)
        entry = {"key": key, "sha256": file_sha256(written)}
        try:
            content = content_digest(written)
        except _UnreadableError:
            content = None
        if content is not None:
            entry["content"] = content  # so that later damage can be told from an edit
        if staged is not None:
            os.replace(written, file)
        checkpoint("derived-written")
        self._update(file.name, entry)
