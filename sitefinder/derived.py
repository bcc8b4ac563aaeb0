"""Files sitefinder derives into the layers folder, and whether a user has taken one over.

Thematic layers (GeoPackages) and derived rasters (the OSM noise proxy, slope) live in the
layers folder so a planner can open, edit or replace them. One ledger,
``sitefinder-derived.json``, records for every file sitefinder wrote the key of the
inputs it was built from and the file's checksum. From that, a file is:

* ``missing`` — build it;
* ``current`` — sitefinder's own, built from these inputs: use it;
* ``stale`` — sitefinder's own, untouched, but built from other inputs: rebuild it;
* ``user`` — its checksum is not what sitefinder wrote (edited in QGIS, or put there by
  hand): use it as it is and never overwrite it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from sitefinder.sources.osm import file_sha256

LEDGER_FILE = "sitefinder-derived.json"

State = Literal["missing", "current", "stale", "user"]


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
        self._entries: dict[str, dict[str, str]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {}
        )

    def state(self, file: str | Path, key: str) -> State:
        """State of ``file`` for inputs summarised by ``key`` (see the module docstring)."""
        file = Path(file)
        if not file.exists():
            return "missing"
        entry = self._entries.get(file.name)
        if entry is None or entry.get("sha256") != file_sha256(file):
            return "user"
        return "current" if entry.get("key") == key else "stale"

    def record(self, file: str | Path, key: str) -> None:
        """Note that sitefinder has just written ``file`` from inputs ``key``."""
        file = Path(file)
        self._entries[file.name] = {"key": key, "sha256": file_sha256(file)}
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self._entries, indent=2, sort_keys=True))
