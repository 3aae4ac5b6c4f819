"""Ctrl-C (SIGINT) and SIGTERM during ``astro-enhance enhance`` and ``astro-enhance batch``.

Whatever moment the signal arrives, the run stops with a non-zero exit code (130 for SIGINT,
143 for SIGTERM), one line on standard error and no traceback, and leaves no partial output:
no output file, no temporary file, no worker process.

The runs are real subprocesses. To hit a given moment deterministically, a small hook module
(written to a temporary directory, imported by a driver script in the main process and by
the dask workers through ``distributed.worker.preload``) touches a marker file:

- ``compute``: when Richardson-Lucy starts on the input (a 1500 x 1500 frame, which takes
  several seconds);
- ``write``: after the output has been written to its temporary file, then sleeps, so the
  signal arrives while the temporary file exists and must be cleaned up.

The driver calls ``astro_enhance.cli.main`` exactly as the ``astro-enhance`` script does.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(300)]


def _default_sigint():
    # A process started in the background by a non-interactive shell (as CI and
    # newcomer-check do) inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt. Give the child the default disposition, as a terminal would.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


REPO = Path(__file__).parents[1]
EXPECTED = {signal.SIGINT: (130, "astro-enhance: interrupted"),
            signal.SIGTERM: (143, "astro-enhance: terminated (SIGTERM)")}

HOOKS = textwrap.dedent('''
    """Test hooks: touch a marker file at a chosen moment (see tests/test_interrupts.py)."""
    import os
    import time
    from pathlib import Path

    PHASE = os.environ.get("AE_TEST_PHASE")
    MARKS = Path(os.environ.get("AE_TEST_MARKS", "."))


    def _mark(what):
        (MARKS / f"{what}.{os.getpid()}").touch()


    if PHASE == "compute":
        from astro_enhance.enhancers import classical

        _real_enhance = classical.RichardsonLucy._enhance

        def _enhance(self, *args, **kwargs):
            _mark("compute")
            return _real_enhance(self, *args, **kwargs)

        classical.RichardsonLucy._enhance = _enhance
    elif PHASE == "write":
        from astropy.io import fits

        _real_writeto = fits.HDUList.writeto

        def writeto(self, fileobj, *args, **kwargs):
            _real_writeto(self, fileobj, *args, **kwargs)
            _mark("write")
            time.sleep(120)

        fits.HDUList.writeto = writeto


    def dask_setup(worker):  # distributed.worker.preload entry point: nothing more to do
        pass
''')

DRIVER = textwrap.dedent('''
    import sys

    import ae_interrupt_hooks  # noqa: F401 - installs the hooks
    from astro_enhance.cli import main

    if __name__ == "__main__":  # dask's spawned workers import this module again
        sys.exit(main(sys.argv[1:]))
''')


@pytest.fixture(scope="module")
def hooks_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("interrupt_hooks")
    (d / "ae_interrupt_hooks.py").write_text(HOOKS)
    (d / "driver.py").write_text(DRIVER)
    return d


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """A 1500 x 1500 SDSS-like frame: Richardson-Lucy takes several seconds on it."""
    from astro_enhance.sample_data import make_sdss_sample

    path = tmp_path_factory.mktemp("interrupt_inputs") / "big.fits"
    make_sdss_sample(shape=(1500, 1500), seed=1).writeto(path)
    return path


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    from astro_enhance.sample_data import make_sdss_sample

    d = tmp_path_factory.mktemp("interrupt_small")
    for i in range(3):
        make_sdss_sample(shape=(48, 48), seed=i).writeto(d / f"frame_{i}.fits")
    return d


def _start(hooks_dir, tmp_path, phase, args):
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hooks_dir), str(REPO), env.get("PYTHONPATH", "")])
    env["AE_TEST_PHASE"] = phase
    env["AE_TEST_MARKS"] = str(marks)
    env["DASK_DISTRIBUTED__WORKER__PRELOAD"] = '["ae_interrupt_hooks"]'
    env.pop("ASTRO_ENHANCE_DEVICE", None)
    proc = subprocess.Popen([sys.executable, str(hooks_dir / "driver.py"), *map(str, args)],
                            env=env, cwd=tmp_path, start_new_session=True,
                            preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, marks


def _wait_for_mark(proc, marks, what, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(marks.glob(f"{what}.*")):
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before reaching '{what}':\n"
                        f"{out.decode()}\n{err.decode()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run did not reach '{what}' within {timeout} s")


def _interrupt(proc, sig, *, group):
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    if group:
        os.killpg(proc.pid, sig)   # what a terminal's Ctrl-C (or kill -TERM -PGID) does
    else:
        os.kill(proc.pid, sig)     # kill PID, a batch system stopping the job
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    psutil.wait_procs(children, timeout=30)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left running: {left}"
    return out.decode(errors="replace"), err.decode(errors="replace")


def _check_answer(proc, sig, out, err):
    code, message = EXPECTED[sig]
    assert proc.returncode == code, (proc.returncode, out, err)
    assert "Traceback" not in out + err, out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [message], err


def _files(directory):
    return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).exists() else []


# ---------------------------------------------------------------------------------------------
# astro-enhance enhance
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_enhance_interrupted_while_computing(sig, big_input, hooks_dir, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = big_input.stat()
    proc, marks = _start(hooks_dir, tmp_path, "compute",
                         ["enhance", big_input, "-o", out_dir / "big_enhanced.fits",
                          "--method", "richardson-lucy", "--no-progress",
                          "--preview", out_dir / "big.png"])
    _wait_for_mark(proc, marks, "compute")
    time.sleep(0.3)
    out, err = _interrupt(proc, sig, group=sig == signal.SIGINT)
    _check_answer(proc, sig, out, err)
    assert _files(out_dir) == []          # neither the FITS output nor the preview
    after = big_input.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_enhance_interrupted_while_writing(sig, small_inputs, hooks_dir, tmp_path):
    """The signal arrives while the output's temporary file exists: it is removed."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc, marks = _start(hooks_dir, tmp_path, "write",
                         ["enhance", small_inputs / "frame_0.fits", "-o",
                          out_dir / "frame_0_enhanced.fits", "--method", "bicubic",
                          "--no-progress"])
    _wait_for_mark(proc, marks, "write")
    temporaries = _files(out_dir)
    assert len(temporaries) == 1 and temporaries[0].startswith(".frame_0_enhanced.fits."), \
        temporaries                                  # the moment the test is about
    out, err = _interrupt(proc, sig, group=False)
    _check_answer(proc, sig, out, err)
    assert _files(out_dir) == []


def test_sigterm_handler_restored_after_main(tmp_path):
    """In-process use of main() leaves the caller's SIGTERM disposition as it was."""
    from astro_enhance.cli import main

    before = signal.getsignal(signal.SIGTERM)
    assert main(["info", str(tmp_path / "missing.fits")]) == 2
    assert signal.getsignal(signal.SIGTERM) is before


# ---------------------------------------------------------------------------------------------
# astro-enhance batch
# ---------------------------------------------------------------------------------------------

def _batch_args(inputs, out_dir, method):
    return ["batch", inputs, "-o", out_dir, "--method", method, "--workers", "1",
            "--no-progress"]


@pytest.mark.parametrize("sig, group", [(signal.SIGINT, True), (signal.SIGTERM, False),
                                        (signal.SIGTERM, True)],
                         ids=["SIGINT-group", "SIGTERM-main", "SIGTERM-group"])
def test_batch_interrupted_while_a_worker_writes(sig, group, small_inputs, hooks_dir,
                                                 tmp_path):
    """A worker is writing its first output (its .part file exists) when the signal comes:
    the run stops, the workers are gone and so is the .part file."""
    out_dir = tmp_path / "out"
    proc, marks = _start(hooks_dir, tmp_path, "write",
                         _batch_args(small_inputs, out_dir, "bicubic"))
    _wait_for_mark(proc, marks, "write")
    assert any(n.endswith(".part") for n in _files(out_dir)), _files(out_dir)
    out, err = _interrupt(proc, sig, group=group)
    _check_answer(proc, sig, out, err)
    assert _files(out_dir) == ["batch_manifest.jsonl"]


def test_batch_sigterm_while_computing(small_inputs, hooks_dir, tmp_path):
    """SIGTERM to the main process while a worker runs Richardson-Lucy; files finished
    before the signal would be complete, none is half-written."""
    from astropy.io import fits

    from astro_enhance.batch import read_manifest
    from astro_enhance.sample_data import make_sdss_sample

    inputs = tmp_path / "in"
    inputs.mkdir()
    make_sdss_sample(shape=(700, 700), seed=2).writeto(inputs / "mid.fits")
    for name in ("frame_0.fits", "frame_1.fits"):
        (inputs / name).write_bytes((small_inputs / name).read_bytes())
    out_dir = tmp_path / "out"
    proc, marks = _start(hooks_dir, tmp_path, "compute",
                         _batch_args(inputs, out_dir, "richardson-lucy"))
    # The frames are done in name order: wait until the worker is on mid.fits.
    deadline = time.monotonic() + 180
    while len(list(marks.glob("compute.*"))) < 1 or not (out_dir / "frame_1_enhanced.fits") \
            .exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the batch did not start"
        time.sleep(0.02)
    time.sleep(0.3)
    out, err = _interrupt(proc, signal.SIGTERM, group=False)
    _check_answer(proc, signal.SIGTERM, out, err)
    names = _files(out_dir)
    # Usually mid.fits is still being computed and leaves nothing; under heavy load it may
    # have finished before the signal: then it must be complete (checked below), never partial.
    assert "batch_manifest.jsonl" in names
    assert not [n for n in names if n.startswith(".")], names
    done = {r["output"]: r["sha256"] for r in read_manifest(out_dir / "batch_manifest.jsonl")
            if r["status"] == "ok"}
    assert "frame_0_enhanced.fits" in done
    for name in names:
        if name.endswith(".fits"):    # complete: CHECKSUM/DATASUM verify, sha256 as recorded
            with fits.open(out_dir / name, checksum=True) as hdul:
                assert hdul[0].header["AE_METH"] == "richardson-lucy"
            if name in done:
                assert _sha256(out_dir / name) == done[name]


def _sha256(path):
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
