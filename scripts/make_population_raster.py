"""Build data/population_250m_2023.tif from SSB's 250 m population grid for Oslo (2023).

Usage: python scripts/make_population_raster.py [SOURCE_GPKG] [OUT_TIF]

Source: ../shared/data-candidates/oslo-ssb-grid-bydeler/befolkning_250m_2023_oslo.gpkg
(Statistics Norway, "befolkning på rutenett 250 m" 2023, CC BY 4.0; copied from
github.com/haavardaagesen/gmgi221 commit 2b006be0d4da84208932539a35a68f18f9c9573e).
"""

from __future__ import annotations

import sys
from pathlib import Path

import rasterio

from sitefinder.population import ATTRIBUTION, rasterise_population, read_ssb_grid

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = (
    ROOT.parent / "shared/data-candidates/oslo-ssb-grid-bydeler/befolkning_250m_2023_oslo.gpkg"
)
DEFAULT_OUT = ROOT / "data/population_250m_2023.tif"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    out = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    grid = read_ssb_grid(source)
    rasterise_population(grid, out, source=f"{ATTRIBUTION}; Oslo 2023; from {source.name}")
    with rasterio.open(out) as dst:
        total = int(dst.read(1, masked=True).sum())
        shape = dst.shape
    expected = int(grid["residents"].sum())
    if total != expected:
        print(f"error: raster holds {total} residents, grid {expected}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({shape[1]} x {shape[0]} cells, {total} residents)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
