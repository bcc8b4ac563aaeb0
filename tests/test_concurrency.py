"""Two runs at once: both finish with consistent outputs, or the second one stops clearly.

Real processes on the same --out and the same layers folder, locked with filelock.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from .test_atomic_outputs import (
    assert_complete,
    env,
    leftovers,
    run_args,
    sitefinder,
    snapshot,
    start_stopped,
    write_plots,
)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("concurrency")
    write_plots(work / "plots.geojson")
    sitefinder(work, "run", *run_args(work, work / "out"))
    return work


def _resume(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err.decode()


def test_second_run_into_the_same_out_stops_with_a_clear_message(work):
    out = work / "out"
    first = start_stopped(work, "run", *run_args(work, out), "--no-cache", stop_at="measure")
    before = snapshot(out)
    started = time.monotonic()
    second = sitefinder(work, "select", "--units", "4", "--out", out, check=False,
                        SITEFINDER_LOCK_WAIT="1")
    assert time.monotonic() - started < 60
    assert second.returncode == 2
    message = second.stderr
    assert str(out) in message and "output folder is in use by another sitefinder run" in message
    assert f"process {first.pid}" in message and "--out" in message
    assert "Traceback" not in message
    assert snapshot(out) == before  # the waiting run touched nothing

    _resume(first)
    assert_complete(out)
    assert leftovers(out) == []


def test_second_run_sharing_the_layers_folder_stops_naming_it(work, tmp_path):
    layers = work / "L"
    first = start_stopped(work, "run", *run_args(work, tmp_path / "one", layers),
                          stop_at="measure")
    second = sitefinder(work, "run", *run_args(work, tmp_path / "two", layers), check=False,
                        SITEFINDER_LOCK_WAIT="0.5")
    assert second.returncode == 2
    assert str(layers) in second.stderr and "layers folder is in use" in second.stderr
    assert f"process {first.pid}" in second.stderr and "--layers" in second.stderr
    assert not (tmp_path / "two").exists() and leftovers(tmp_path / "two") == []
    _resume(first)
    assert_complete(tmp_path / "one")


def test_two_runs_at_once_both_finish_with_consistent_outputs(work, tmp_path):
    """Same --out, same (new) layers folder: the second waits for the first, then runs."""
    out, layers = tmp_path / "shared", tmp_path / "layers"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sitefinder.cli", *map(str, args)],
            cwd=work, env=env(SITEFINDER_LOCK_WAIT="300"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for args in (
            ["run", *run_args(work, out, layers), "--no-cache"],
            ["select", "--units", "8", *run_args(work, out, layers), "--no-cache"],
        )
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    manifest = assert_complete(out)
    # One of the two runs, whole: with a selection exactly when it was the select run.
    assert ("selection" in manifest) == ("selected.csv" in manifest["files"])
    assert leftovers(out) == []
    ledger = json.loads((layers / "sitefinder-derived.json").read_text())
    built = {p.name for p in layers.iterdir() if p.suffix in (".gpkg", ".tif")}
    assert built and set(ledger) == built
    assert not any("building" in entry for entry in ledger.values())
    assert set(manifest["layer_origin"].values()) <= {"built", "reused"}


def test_ledger_keeps_every_entry_when_processes_record_at_once(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from sitefinder.derived import Ledger

        folder, worker = Path(sys.argv[1]), sys.argv[2]
        for i in range(15):
            path = folder / f"w{worker}-{i}.bin"
            path.write_bytes(f"{worker}/{i}".encode())
            Ledger(folder).record(path, f"key-{worker}-{i}")
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(w)],
                         env=env(SITEFINDER_LOCK_WAIT="120"), stderr=subprocess.PIPE)
        for w in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    ledger = json.loads((tmp_path / "sitefinder-derived.json").read_text())
    assert set(ledger) == {f"w{w}-{i}.bin" for w in range(4) for i in range(15)}
    assert all(ledger[f"w{w}-{i}.bin"]["key"] == f"key-{w}-{i}"
               for w in range(4) for i in range(15))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary ledger left behind

