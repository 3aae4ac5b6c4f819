"""Tests of astro_enhance.batch and ``astro-enhance batch`` (issue 9).

The acceptance tests run real dask clusters (a LocalCluster, and a scheduler plus two workers
started as separate processes on loopback) on 30 small inputs with the fast classical
``bicubic`` method.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astro_enhance import InputError, OutputError
from astro_enhance.batch import (EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, MANIFEST_NAME,
                                 BatchResult, _Manifest, _data_sha256, _process_file,
                                 _read_records, _write_atomic, expand_inputs, output_name,
                                 read_manifest, run_batch)

pytestmark = [pytest.mark.enable_socket, pytest.mark.timeout(240)]


def _default_sigint():
    # A process started in the background by a non-interactive shell (as CI and
    # newcomer-check do) inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt. Give the child the default disposition, as a terminal would.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


REPO = Path(__file__).parents[1]
N_GOOD = 26
BAD = {"corrupt_truncated.fits", "corrupt_text.fits", "corrupt_empty.fits", "nowcs.fits"}
TEMP_RE = re.compile(r"^\..+_enhanced\.fits\.[0-9a-f]{16}\.part$")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("ASTRO_ENHANCE_DEVICE", None)
    return env


def _sample(seed):
    from astro_enhance.sample_data import make_sdss_sample

    return make_sdss_sample(shape=(64, 64), seed=seed)


def _write_inputs(directory):
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(N_GOOD):
        _sample(i).writeto(directory / f"frame_{i:02d}.fits")
    good = (directory / "frame_00.fits").read_bytes()
    (directory / "corrupt_truncated.fits").write_bytes(good[:2880 + 1000])
    (directory / "corrupt_text.fits").write_text("this is not a FITS file\n" * 50)
    (directory / "corrupt_empty.fits").write_bytes(b"")
    hdu = fits.PrimaryHDU(np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32))
    hdu.header["BUNIT"] = "nanomaggy"
    hdu.writeto(directory / "nowcs.fits")
    return directory


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _write_inputs(tmp_path_factory.mktemp("batch_inputs"))


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_local") / "out"
    result = run_batch(str(inputs / "*.fits"), out, method="bicubic", n_workers=2)
    return result, out


def _check_dir(out, *, allow_temp):
    """Only outputs, the manifest (and maybe temporaries) exist; every output is complete."""
    outputs = []
    for name in os.listdir(out):
        if name == MANIFEST_NAME:
            continue
        if TEMP_RE.match(name):
            assert allow_temp, f"temporary file {name} left behind"
            continue
        assert name.endswith("_enhanced.fits"), f"unexpected file {name}"
        with fits.open(out / name, checksum=True) as hdul:  # verifies CHECKSUM/DATASUM
            assert hdul[0].header["AE_METH"] == "bicubic"
            assert "CHECKSUM" in hdul[0].header
            assert np.isfinite(hdul[0].data).any()
        outputs.append(name)
    return sorted(outputs)


# ---------------------------------------------------------------------------------------------
# Small pieces, no cluster
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("frame-r-000756-2-0427.fits.bz2", "frame-r-000756-2-0427_enhanced.fits"),
    ("/a/b/cut.fits", "cut_enhanced.fits"),
    ("cut.FITS.gz", "cut_enhanced.fits"),
    ("tile.fits.fz", "tile_enhanced.fits"),
    ("img.fit", "img_enhanced.fits"),
    ("odd.dat", "odd_enhanced.fits"),
])
def test_output_name(name, expected):
    assert output_name(name) == expected


def test_expand_inputs(tmp_path):
    for n in ("b.fits", "a.fits", "c.fits.gz", "notes.txt"):
        (tmp_path / n).write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_enhanced.fits").write_bytes(b"x")
    got = expand_inputs([str(tmp_path / "*.fits"), str(tmp_path / "a.fits"),
                         str(out / "*.fits")], out)
    assert got == [str(tmp_path / "a.fits"), str(tmp_path / "b.fits")]
    # A directory gives its FITS files; a missing literal name is kept (fails as a file).
    got = expand_inputs([tmp_path, tmp_path / "missing.fits"])
    assert [Path(p).name for p in got] == ["a.fits", "b.fits", "c.fits.gz", "missing.fits"]
    with pytest.raises(InputError, match="no input files match"):
        expand_inputs(str(tmp_path / "*.nothing"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.fits.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="a_enhanced.fits"):
        expand_inputs([tmp_path / "a.fits", tmp_path / "sub" / "a.fits.gz"])


def test_manifest_torn_line_and_lock(tmp_path):
    path = tmp_path / MANIFEST_NAME
    m = _Manifest(path)
    m.append({"event": "file", "input": "/x/a.fits", "status": "ok", "sha256": "00"})
    # A second batch on the same directory is refused while the first holds the lock.
    with pytest.raises(OutputError, match="another batch"):
        _Manifest(path)
    m.close()
    with open(path, "ab") as f:  # a kill in the middle of a line
        f.write(b'{"event": "file", "input": "/x/b.fi')
    m = _Manifest(path)
    m.append({"event": "file", "input": "/x/c.fits", "status": "failed", "error": "boom"})
    m.close()
    recs = _read_records(path)
    assert [r["input"] for r in recs] == ["/x/a.fits", "/x/c.fits"]
    t = read_manifest(tmp_path)
    assert list(t["status"]) == ["ok", "failed"] and t["error"][1] == "boom"


def test_write_atomic_leaves_nothing_on_failure(tmp_path):
    class Boom:
        def writeto(self, f, checksum=False):
            f.write(b"SIMPLE  =" + b" " * 100)
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _write_atomic(Boom(), tmp_path / "x_enhanced.fits")
    assert os.listdir(tmp_path) == []
    hdul = fits.HDUList([fits.PrimaryHDU(np.arange(6, dtype=np.float32).reshape(2, 3))])
    sha = _write_atomic(hdul, tmp_path / "x_enhanced.fits")
    assert os.listdir(tmp_path) == ["x_enhanced.fits"]
    import hashlib
    assert sha == hashlib.sha256((tmp_path / "x_enhanced.fits").read_bytes()).hexdigest()


def test_exit_codes():
    def res(*statuses):
        return BatchResult(records=[{"status": s, "input": f"/{i}", "output": f"{i}"}
                                    for i, s in enumerate(statuses)],
                           output_dir=Path("."), manifest=Path("m"))

    assert res("ok", "skipped").exit_code == EXIT_OK == 0
    assert res("ok", "failed").exit_code == EXIT_PARTIAL == 1
    assert res("skipped", "failed").exit_code == EXIT_PARTIAL
    assert res("failed", "failed").exit_code == EXIT_FAILED == 2


def test_usage_errors_before_any_cluster(tmp_path, capsys):
    from astro_enhance.cli import main

    assert main(["batch", str(tmp_path / "*.fits"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no input files match" in err and "Traceback" not in err
    (tmp_path / "a.fits").write_bytes(b"x")
    with pytest.raises(InputError, match="unknown option"):
        run_batch(tmp_path / "a.fits", tmp_path / "o", method="bicubic", colour="red")
    assert not (tmp_path / "o" / MANIFEST_NAME).exists()


def test_process_file_reuses_enhancer(inputs, tmp_path):
    """In one process the enhancer is built once for all files with the same settings."""
    from astro_enhance import enhancers

    real = getattr(enhancers.get_enhancer, "_astro_enhance_batch_original",
                   enhancers.get_enhancer)
    recs = []
    for i in range(3):
        src = str(inputs / f"frame_{i:02d}.fits")
        recs.append(_process_file(src, str(tmp_path / output_name(src)), "bicubic",
                                  {"remove_stars": False}, None, "r", {}))
    assert [r["status"] for r in recs] == ["ok"] * 3, recs
    loads = [r["model_loads"] for r in recs]
    assert loads[0] >= 1 and loads[2] == loads[0]
    # Outside a batch task, the wrapped get_enhancer behaves exactly like the original.
    assert (enhancers.get_enhancer("bicubic") is enhancers.get_enhancer("bicubic")) == \
        (real("bicubic") is real("bicubic"))
    bad = _process_file(str(inputs / "corrupt_text.fits"), str(tmp_path / "x_enhanced.fits"),
                        "bicubic", {"remove_stars": False}, None, "r", {})
    assert bad["status"] == "failed" and bad["error"] and bad["error_type"]
    assert sorted(os.listdir(tmp_path)) == sorted(output_name(r["input"]) for r in recs)


# ---------------------------------------------------------------------------------------------
# Acceptance 1: 30 inputs, 3 corrupt + 1 without WCS
# ---------------------------------------------------------------------------------------------

def test_partial_success(local_run, inputs):
    result, out = local_run
    assert (result.n_total, result.n_ok, result.n_failed, result.n_skipped) == (30, 26, 4, 0)
    assert result.exit_code == EXIT_PARTIAL
    assert result.n_workers == 2
    failed = {Path(r["input"]).name: r for r in result.failed}
    assert set(failed) == BAD
    for name, r in failed.items():
        assert r["error"] and r["error_type"], r
        assert r["output"] and not (out / r["output"]).exists()
    assert failed["nowcs.fits"]["error_type"] == "WCSError", failed["nowcs.fits"]
    outputs = _check_dir(out, allow_temp=False)
    assert outputs == sorted(f"frame_{i:02d}_enhanced.fits" for i in range(N_GOOD))
    # Manifest: one run line, one line per input, checksums that match the files.
    recs = _read_records(out / MANIFEST_NAME)
    assert [r["event"] for r in recs].count("run") == 1
    files = [r for r in recs if r["event"] == "file"]
    assert len(files) == 30
    import hashlib
    for r in files:
        for key in ("input", "status", "output", "sha256", "seconds", "error"):
            assert key in r
        if r["status"] == "ok":
            data = (out / r["output"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
            assert r["seconds"] > 0
    # Each worker process built the enhancer exactly once and reused it for its files.
    ok = [r for r in files if r["status"] == "ok"]
    assert {r["model_loads"] for r in ok} == {1}
    pids = {r["pid"] for r in ok}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    assert len(ok) > len(pids)
    table = result.table
    assert len(table) == 30 and set(table["status"]) == {"ok", "failed"}
    text = result.summary()
    assert "26 enhanced" in text and "4 failed" in text and "nowcs.fits" in text


def test_resume_skips_verified_and_redoes_the_rest(local_run, tmp_path):
    result, out = local_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    victim = work / "frame_03_enhanced.fits"
    with fits.open(victim) as hdul:
        at = hdul[0].fileinfo()["datLoc"] + 5000  # a pixel, not the zero padding
    raw = bytearray(victim.read_bytes())
    raw[at] ^= 0xFF
    victim.write_bytes(bytes(raw))  # damaged: its sha256 no longer matches the manifest
    (work / "frame_04_enhanced.fits").unlink()  # lost
    (work / ".frame_05_enhanced.fits.0123456789abcdef.part").write_bytes(b"junk")  # left over
    before = {n: os.stat(work / n).st_mtime_ns for n in os.listdir(work)
              if n.endswith("_enhanced.fits")}
    inputs_glob = str(Path(result.records[0]["input"]).parent / "*.fits")
    again = run_batch(inputs_glob, work, method="bicubic", n_workers=1)
    assert (again.n_ok, again.n_skipped, again.n_failed) == (2, 24, 4)
    assert again.exit_code == EXIT_PARTIAL
    redone = {Path(r["input"]).name for r in again.records if r["status"] == "ok"}
    assert redone == {"frame_03.fits", "frame_04.fits"}
    for n, t in before.items():
        if n != "frame_03_enhanced.fits":
            assert os.stat(work / n).st_mtime_ns == t, f"{n} was rewritten"
    assert _check_dir(work, allow_temp=False) == _check_dir(out, allow_temp=False)
    # Other settings in the same directory are refused unless overwrite=True.
    with pytest.raises(InputError, match="other settings"):
        run_batch(inputs_glob, work, method="bicubic", n_workers=1, north_up=True)


# ---------------------------------------------------------------------------------------------
# Acceptance 2: SIGKILL midway, re-run
# ---------------------------------------------------------------------------------------------

def _cli(args):
    return [sys.executable, "-m", "astro_enhance.cli", "batch", *args]


def test_sigkill_and_rerun(inputs, local_run, tmp_path):
    out = tmp_path / "out"
    args = [str(inputs / "*.fits"), "-o", str(out), "--method", "bicubic", "--workers", "1",
            "--no-progress"]
    proc = subprocess.Popen(_cli(args), env=_env(), cwd=tmp_path, start_new_session=True,
                            preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    manifest = out / MANIFEST_NAME
    killed_running = False
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if out.is_dir():
                _check_dir(out, allow_temp=True)  # no partial file at any moment
            n_ok = sum(r.get("status") == "ok" for r in _read_records(manifest))
            if n_ok >= 4:
                killed_running = proc.poll() is None
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert killed_running, f"the batch ended before it could be killed:\n{log}"
    time.sleep(0.5)  # let the killed workers' descriptors close
    before = [r for r in _read_records(manifest) if r.get("event") == "file"]
    done_before = {r["input"]: r["sha256"] for r in before if r["status"] == "ok"}
    assert 4 <= len(done_before) < N_GOOD
    print(f"killed with {len(done_before)} of {N_GOOD} outputs recorded")
    _check_dir(out, allow_temp=True)

    rerun = subprocess.run(_cli(args), env=_env(), cwd=tmp_path, capture_output=True,
                           text=True, timeout=200)
    assert rerun.returncode == EXIT_PARTIAL, rerun.stdout + rerun.stderr
    outputs = _check_dir(out, allow_temp=False)
    assert len(outputs) == N_GOOD
    recs = _read_records(manifest)
    run_ids = [r["run_id"] for r in recs if r.get("event") == "run"]
    assert len(run_ids) == 2
    second = [r for r in recs if r.get("event") == "file" and r["run_id"] == run_ids[1]]
    assert len(second) == 30
    by_input = {r["input"]: r for r in second}
    for inp, sha in done_before.items():
        assert by_input[inp]["status"] == "skipped", by_input[inp]
        assert by_input[inp]["sha256"] == sha
    assert sum(r["status"] == "ok" for r in second) == N_GOOD - len(done_before)
    assert sum(r["status"] == "failed" for r in second) == 4
    # Every output equals the uninterrupted run's (same pixels).
    local = {Path(r["input"]).name: r["data_sha256"] for r in local_run[0].records
             if r["status"] == "ok"}
    for r in second:
        if r["status"] in ("ok", "skipped"):
            with fits.open(out / r["output"]) as hdul:
                assert _data_sha256(hdul[0].data) == local[Path(r["input"]).name]
    assert "26 enhanced" not in rerun.stdout and "already done" in rerun.stdout


def test_ctrl_c_stops_cleanly(inputs, tmp_path):
    """SIGINT to the process group (a terminal's Ctrl-C): exit 130, one line, no workers left."""
    import psutil

    out = tmp_path / "out"
    args = [str(inputs / "*.fits"), "-o", str(out), "--method", "bicubic", "--workers", "1",
            "--no-progress"]
    proc = subprocess.Popen(_cli(args), env=_env(), cwd=tmp_path, start_new_session=True,
                            preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    children = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(r.get("status") == "ok" for r in _read_records(out / MANIFEST_NAME)) >= 2:
                children = psutil.Process(proc.pid).children(recursive=True)
                os.killpg(proc.pid, signal.SIGINT)
                break
            time.sleep(0.02)
        log = proc.communicate(timeout=90)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert children, f"the batch ended before it could be interrupted:\n{log}"
    assert proc.returncode == 130, log
    assert "interrupted" in log and "Traceback" not in log, log
    psutil.wait_procs(children, timeout=20)
    assert not [c for c in children if c.is_running() and c.status() != "zombie"]
    assert len(_check_dir(out, allow_temp=True)) < N_GOOD


# ---------------------------------------------------------------------------------------------
# Acceptance 3: an external scheduler and two workers on loopback
# ---------------------------------------------------------------------------------------------

def test_external_scheduler_same_outputs(inputs, local_run, tmp_path):
    from distributed import Client

    from astro_enhance.cli import main

    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]  # the ``dask`` command of this interpreter
    procs = []
    client = None
    try:
        procs.append(subprocess.Popen(
            dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(sched_file)],
            env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            assert procs[0].poll() is None, "dask scheduler exited"
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(subprocess.Popen(
                dask + ["worker", address,
                 "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                 "--no-dashboard"],
                env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        client = Client(address, timeout=30)
        client.wait_for_workers(2, timeout=90)
        workers = set(client.nthreads())
        out = tmp_path / "out"
        code = main(["batch", str(inputs / "*.fits"), "-o", str(out), "--method", "bicubic",
                     "--scheduler", address, "--no-progress"])
        assert code == EXIT_PARTIAL
        assert len(client.nthreads()) == 2  # the external cluster is left running
    finally:
        if client is not None:
            client.close()
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    t = read_manifest(out)
    assert len(t) == 30
    assert set(t["worker"][t["status"] == "ok"]) <= workers
    assert len(set(t["worker"][t["status"] == "ok"])) == 2
    local = {Path(r["input"]).name: r["data_sha256"] for r in local_run[0].records
             if r["status"] == "ok"}
    assert len(local) == N_GOOD
    outputs = _check_dir(out, allow_temp=False)
    assert len(outputs) == N_GOOD
    for name in outputs:
        with fits.open(out / name) as hdul:
            assert _data_sha256(hdul[0].data) == local[name.replace("_enhanced", "")]
    assert set(t["input"][t["status"] == "failed"]) == {str(inputs / n) for n in BAD}
