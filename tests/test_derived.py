"""The ledger of derived files: sitefinder rebuilds its own stale files, never a user's."""

from __future__ import annotations

from sitefinder.derived import Ledger


def test_states_of_a_derived_file(tmp_path):
    ledger = Ledger(tmp_path)
    layer = tmp_path / "transit.gpkg"
    assert ledger.state(layer, "osm-A") == "missing"
    layer.write_bytes(b"built from A")
    ledger.record(layer, "osm-A")
    again = Ledger(tmp_path)  # read back from disk
    assert again.state(layer, "osm-A") == "current"
    assert again.state(layer, "osm-B") == "stale"  # ours, untouched, other inputs: rebuild
    layer.write_bytes(b"edited in QGIS, one bus stop added")
    assert again.state(layer, "osm-B") == "user"  # never overwritten
    placed = tmp_path / "noise_proxy.tif"
    placed.write_bytes(b"the municipality's own raster")
    assert again.state(placed, "anything") == "user"
