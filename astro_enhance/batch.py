"""Enhance many FITS files on dask.distributed: resumable, atomic, one failure never stops a batch.

`run_batch` maps `astro_enhance.pipeline.enhance_fits` over a list of files. By default it
starts a `distributed.LocalCluster` (one process per core, one thread each); pass ``client=``
(a `distributed.Client` or a scheduler address) to use any existing cluster, for example one
started with dask-jobqueue on an HPC system.

Files written to the output directory:

``<stem>_enhanced.fits``
    One output per input (``frame-r-000756-2-0427.fits.bz2`` gives
    ``frame-r-000756-2-0427_enhanced.fits``). Written to a temporary name first, flushed to
    disk and renamed, so a file with this name is always complete.
``batch_manifest.jsonl``
    JSON lines, appended (and fsync'ed) as each file finishes. One ``"event": "run"`` line per
    run, then one ``"event": "file"`` line per input per run with ``input``, ``status``
    (``ok``, ``skipped`` or ``failed``), ``output``, ``sha256`` (of the output file),
    ``data_sha256`` (of the primary data, big-endian float32), ``seconds``, ``error``,
    ``error_type``, ``warnings`` and the processing ``config``. Read it with `read_manifest`.
``.<stem>_enhanced.fits.<hex>.part``
    Temporary files that exist only while an output is being written. A batch killed at
    that moment leaves one behind; the next run in the same directory deletes it. The name
    never ends in ``.fits``.

Exit codes (`BatchResult.exit_code`, ``astro-enhance batch``): 0 every input succeeded (or was
already done), 1 some failed (partial success), 2 none succeeded or the call itself was wrong.
"""

import contextlib
import functools
import glob
import hashlib
import inspect
import json
import os
import re
import secrets
import sys
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .exceptions import AstroEnhanceWarning, InputError, OutputError

__all__ = ["run_batch", "BatchResult", "read_manifest", "output_name", "expand_inputs",
           "MANIFEST_NAME", "TEMP_PATTERN", "EXIT_OK", "EXIT_PARTIAL", "EXIT_FAILED"]

#: Name of the manifest file in the output directory.
MANIFEST_NAME = "batch_manifest.jsonl"
#: Shell pattern of the temporary files that may be left by a killed batch (deleted on re-run).
TEMP_PATTERN = ".*_enhanced.fits.*.part"
#: Exit code: every input succeeded or was already done.
EXIT_OK = 0
#: Exit code: some inputs failed, some succeeded.
EXIT_PARTIAL = 1
#: Exit code: no input succeeded, or the batch could not start (usage error).
EXIT_FAILED = 2

_TEMP_RE = re.compile(r"^\..+_enhanced\.fits\.[0-9a-f]{16}\.part$")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".fz", ".xz", ".z")
_FITS_SUFFIXES = (".fits", ".fit", ".fts")
_DONE = ("ok", "skipped")
#: Options of enhance_fits that run_batch passes through (``data``/``method``/``progress`` are
#: set per file).
_PIPELINE_FIXED = ("data", "method", "progress", "remove_stars")


# --------------------------------------------------------------------------------------------
# Names and inputs
# --------------------------------------------------------------------------------------------

def output_name(path):
    """File name of the output written for an input file.

    Parameters
    ----------
    path : str or path-like
        Input file name; compression (``.gz``, ``.bz2``, ``.fz``, ``.xz``) and FITS
        (``.fits``, ``.fit``, ``.fts``) suffixes are removed.

    Returns
    -------
    str
        ``<stem>_enhanced.fits``.

    Examples
    --------
    >>> from astro_enhance.batch import output_name
    >>> output_name("data/frame-r-000756-2-0427.fits.bz2")
    'frame-r-000756-2-0427_enhanced.fits'
    """
    name = Path(os.fspath(path)).name
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
            break
    for suffix in _FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
            break
    else:
        name = Path(name).stem or name
    return f"{name}_enhanced.fits"


def _is_fits_name(name):
    low = name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if low.endswith(suffix):
            low = low[:-len(suffix)]
            break
    return low.endswith(_FITS_SUFFIXES)


def expand_inputs(inputs, output_dir=None):
    """Expand file names, glob patterns and directories into a list of input files.

    Parameters
    ----------
    inputs : str, path-like or iterable of them
        File names, shell patterns (``*``, ``?``, ``[...]``, ``**`` for recursion) or
        directories (every FITS file directly inside). A name that does not exist is kept:
        it is reported as a failed file, not an error of the whole batch.
    output_dir : str or path-like, optional
        Files of a previous batch in this directory (outputs, manifest, temporary files)
        are left out so that ``batch 'dir/*' -o dir`` never enhances its own outputs.

    Returns
    -------
    list of str
        Absolute paths, in the order given (patterns sorted), without duplicates.

    Raises
    ------
    astro_enhance.InputError
        If nothing at all matches, or two inputs would give the same output name.

    Examples
    --------
    >>> from astro_enhance.batch import expand_inputs
    >>> expand_inputs(["/data/a.fits", "/data/a.fits"])
    ['/data/a.fits']
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out_dir = os.path.abspath(output_dir) if output_dir is not None else None
    seen, paths, unmatched = set(), [], []
    for item in inputs:
        s = os.path.expanduser(os.fspath(item))
        if any(c in s for c in "*?["):
            matches = sorted(m for m in glob.glob(s, recursive=True) if os.path.isfile(m))
            if not matches:
                unmatched.append(s)
        elif os.path.isdir(s):
            matches = sorted(os.path.join(s, n) for n in os.listdir(s)
                             if _is_fits_name(n) and os.path.isfile(os.path.join(s, n)))
            if not matches:
                unmatched.append(s)
        else:
            matches = [s]
        for m in matches:
            a = os.path.abspath(m)
            if out_dir is not None and os.path.dirname(a) == out_dir:
                n = os.path.basename(a)
                if (n.endswith("_enhanced.fits") or n == MANIFEST_NAME
                        or _TEMP_RE.match(n)):
                    continue
            if a not in seen:
                seen.add(a)
                paths.append(a)
    if not paths:
        what = ", ".join(repr(u) for u in unmatched) or repr(list(inputs))
        raise InputError(f"no input files match {what}; check the pattern and quote it so "
                         "that the shell does not expand it")
    if unmatched:
        warnings.warn(f"no files match {', '.join(repr(u) for u in unmatched)}",
                      AstroEnhanceWarning)
    by_name = {}
    for p in paths:
        by_name.setdefault(output_name(p), []).append(p)
    clashes = {k: v for k, v in by_name.items() if len(v) > 1}
    if clashes:
        k, v = next(iter(clashes.items()))
        raise InputError(f"{len(clashes)} output name(s) would be written by more than one "
                         f"input, e.g. {k} by {v[0]} and {v[1]}; run the directories as "
                         "separate batches with different output directories")
    return paths


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------

def _manifest_path(path):
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() or p.suffix != ".jsonl" else p


def _read_records(path):
    """All well-formed JSON records of a manifest (a torn last line is ignored)."""
    records = []
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return records
    for line in raw.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill: that file is simply redone
        if isinstance(rec, dict):
            records.append(rec)
    return records


def read_manifest(path, *, latest=False):
    """Read a batch manifest as a table.

    Parameters
    ----------
    path : str or path-like
        The output directory of a batch, or its ``batch_manifest.jsonl``.
    latest : bool, optional
        Keep only the last record of each input (its current state).

    Returns
    -------
    table : `~astropy.table.Table`
        One row per file record: ``input``, ``status``, ``output``, ``sha256``,
        ``data_sha256``, ``seconds`` (wall), ``cpu_seconds`` (CPU time of the worker
        process), ``error``, ``error_type``, ``warnings`` (joined with
        ``"; "``), ``run_id``, ``finished``, ``worker``, ``pid``, ``model_loads`` (enhancers
        built so far by that worker process). Missing values are empty strings / NaN / -1.

    Examples
    --------
    >>> from astro_enhance.batch import read_manifest
    >>> t = read_manifest("out/")                        # doctest: +SKIP
    >>> t[t["status"] == "failed"]["input", "error"]     # doctest: +SKIP
    """
    from astropy.table import Table

    recs = [r for r in _read_records(_manifest_path(path)) if r.get("event") == "file"]
    if latest:
        last = OrderedDict()
        for r in recs:
            last.pop(r.get("input"), None)
            last[r.get("input")] = r
        recs = list(last.values())
    return _records_table(recs)


def _records_table(recs):
    from astropy.table import Table

    str_cols = ("input", "status", "output", "sha256", "data_sha256", "error",
                "error_type", "run_id", "finished", "worker")
    cols = {c: [str(r.get(c) or "") for r in recs] for c in str_cols}
    for c in ("seconds", "cpu_seconds"):
        cols[c] = [float(r[c]) if r.get(c) is not None else np.nan for r in recs]
    cols["warnings"] = ["; ".join(r.get("warnings") or ()) for r in recs]
    cols["pid"] = [int(r.get("pid", -1) or -1) for r in recs]
    cols["model_loads"] = [int(r.get("model_loads", -1) or 0) for r in recs]
    order = ["input", "status", "output", "sha256", "data_sha256", "seconds", "cpu_seconds",
             "error", "error_type", "warnings", "run_id", "finished", "worker", "pid",
             "model_loads"]
    t = Table({k: cols[k] for k in order},
              dtype=[str] * 5 + [float] * 2 + [str] * 6 + [int] * 2)
    return t


class _Manifest:
    """Append-only JSON-lines writer holding an exclusive lock on the manifest."""

    def __init__(self, path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self.fd)
                raise OutputError(f"another batch is writing to {self.path.parent}; wait for "
                                  "it to finish or choose another output directory") from None
        # A kill in the middle of a line leaves it unterminated: start on a fresh line.
        size = os.fstat(self.fd).st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(self.fd, b"\n")

    def append(self, record):
        line = (json.dumps(record, default=str) + "\n").encode()
        try:
            os.write(self.fd, line)
            os.fsync(self.fd)
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc}") from exc

    def close(self):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


# --------------------------------------------------------------------------------------------
# Worker side: per-process enhancer cache, atomic write, one file
# --------------------------------------------------------------------------------------------

_CACHE = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()
_LOCAL = threading.local()
_STATE = {"installed": False, "loads": 0, "torch_threads": None}


def _limit_torch_threads():
    n = _STATE["torch_threads"]
    if n and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _install_enhancer_cache():
    """Wrap ``astro_enhance.enhancers.get_enhancer`` in this process with a cache.

    `enhance_fits` obtains its enhancer with ``get_enhancer(method, device=..., weights=...,
    **options)`` at every call. Inside a batch task (and only there: other callers in the
    same process get the original behaviour) the wrapper returns the instance built by the
    first call with the same arguments, so a worker loads a model once, not once per file.
    """
    if _STATE["installed"]:
        return
    from . import enhancers

    original = enhancers.get_enhancer

    @functools.wraps(original)
    def get_enhancer(name, *args, **kwargs):
        if not getattr(_LOCAL, "active", False):
            return original(name, *args, **kwargs)
        key = repr((name, args, sorted((k, repr(v)) for k, v in kwargs.items())))
        with _CACHE_LOCK:
            enh = _CACHE.get(key)
            if enh is None:
                enh = original(name, *args, **kwargs)
                _CACHE[key] = enh
                _STATE["loads"] += 1
                while len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
                _limit_torch_threads()
            else:
                _CACHE.move_to_end(key)
        return enh

    get_enhancer._astro_enhance_batch_original = original
    enhancers.get_enhancer = get_enhancer
    _STATE["installed"] = True


def _sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _data_sha256(data):
    return hashlib.sha256(np.ascontiguousarray(data, dtype=">f4").tobytes()).hexdigest()


def _write_atomic(hdul, final):
    """Write ``hdul`` to a hidden temporary name in the same directory, fsync, rename."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(8)}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:  # astropy knows mode "wb", not "xb"
            hdul.writeto(f, checksum=True)
            f.flush()
            os.fsync(f.fileno())
        sha = _sha256_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return sha


def _one_line(exc):
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _single_threaded():
    try:
        from distributed import get_worker

        return get_worker().state.nthreads == 1
    except (ImportError, ValueError, AttributeError):
        return threading.active_count() == 1


def _process_file(input_path, output_path, method, options, torch_threads, run_id, config):
    """Enhance one file and write its output; runs on a dask worker. Never raises."""
    t0, c0 = time.perf_counter(), time.process_time()
    rec = {"event": "file", "run_id": run_id, "input": input_path,
           "output": os.path.basename(output_path), "status": "failed", "sha256": None,
           "data_sha256": None, "error": None, "error_type": None, "config": config}
    try:
        _STATE["torch_threads"] = torch_threads
        _install_enhancer_cache()
        _limit_torch_threads()
        from .pipeline import enhance_fits

        def work():
            _LOCAL.active = True
            try:
                hdul = enhance_fits(input_path, method, progress=False, **options)
            finally:
                _LOCAL.active = False
            rec["data_sha256"] = _data_sha256(hdul[0].data)
            rec["sha256"] = _write_atomic(hdul, output_path)

        if _single_threaded():
            # Keep warnings with their file (in the manifest) instead of letting every worker
            # print them through the progress bar. catch_warnings is process-global, so only
            # on workers that run one task at a time.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    work()
                finally:
                    msgs = list(dict.fromkeys(
                        f"{w.category.__name__}: {_one_line(w.message)}" for w in caught))
                    if msgs:
                        rec["warnings"] = msgs[:10]
        else:
            work()
        rec["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        rec["error"] = _one_line(exc)
        rec["error_type"] = exc.__class__.__name__
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    rec["cpu_seconds"] = round(time.process_time() - c0, 4)  # < seconds: I/O or busy cores
    rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    rec["pid"] = os.getpid()
    rec["model_loads"] = _STATE["loads"]
    try:
        from distributed import get_worker

        rec["worker"] = get_worker().address
    except (ImportError, ValueError):
        rec["worker"] = None
    return rec


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------

@dataclass
class BatchResult:
    """What a batch did: one record per input of this run, counts and an exit code.

    Attributes
    ----------
    records : list of dict
        One manifest record per input, in input order.
    output_dir : `~pathlib.Path`
        The output directory.
    manifest : `~pathlib.Path`
        The manifest file.
    seconds : float
        Wall-clock time of the run, cluster start-up included.
    n_workers : int
        Number of dask workers used (0 when nothing had to be processed).

    Examples
    --------
    >>> from pathlib import Path
    >>> from astro_enhance.batch import BatchResult
    >>> r = BatchResult(records=[{"input": "/d/a.fits", "output": "a_enhanced.fits",
    ...                           "status": "ok"},
    ...                          {"input": "/d/b.fits", "output": "b_enhanced.fits",
    ...                           "status": "failed", "error_type": "WCSError",
    ...                           "error": "no celestial WCS"}],
    ...                 output_dir=Path("out"), manifest=Path("out/batch_manifest.jsonl"))
    >>> r.n_ok, r.n_failed, r.exit_code
    (1, 1, 1)
    """

    records: list
    output_dir: Path
    manifest: Path
    seconds: float = 0.0
    n_workers: int = 0
    run_id: str = ""
    method: str = ""
    _table: object = field(default=None, repr=False)

    @property
    def n_total(self):
        """Number of inputs."""
        return len(self.records)

    @property
    def n_ok(self):
        """Inputs processed successfully in this run."""
        return sum(r["status"] == "ok" for r in self.records)

    @property
    def n_skipped(self):
        """Inputs whose verified output from an earlier run was kept."""
        return sum(r["status"] == "skipped" for r in self.records)

    @property
    def n_failed(self):
        """Inputs that failed (see their ``error``)."""
        return sum(r["status"] == "failed" for r in self.records)

    @property
    def failed(self):
        """Records of the failed inputs."""
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def outputs(self):
        """Paths of every valid output (processed now or kept from an earlier run)."""
        return [self.output_dir / r["output"] for r in self.records if r["status"] in _DONE]

    @property
    def exit_code(self):
        """0 if every input succeeded or was done already, 1 if some failed, 2 if all did."""
        if self.n_failed == 0:
            return EXIT_OK
        return EXIT_PARTIAL if self.n_ok + self.n_skipped > 0 else EXIT_FAILED

    @property
    def files_per_minute(self):
        """Throughput of this run: processed files (ok or failed) per minute of wall time."""
        n = self.n_ok + self.n_failed
        return 60.0 * n / self.seconds if self.seconds > 0 else float("nan")

    @property
    def table(self):
        """`~astropy.table.Table` of this run's records (columns as in `read_manifest`)."""
        if self._table is None:
            self._table = _records_table(self.records)
        return self._table

    def summary(self, *, max_failures=20):
        """Plain-text summary: counts, throughput and the failed files with their reasons.

        Parameters
        ----------
        max_failures : int, optional
            List at most this many failures (the manifest has them all).

        Returns
        -------
        str
        """
        lines = [f"{self.n_total} input(s): {self.n_ok} enhanced, {self.n_skipped} already "
                 f"done (skipped), {self.n_failed} failed; {self.seconds:.1f} s with "
                 f"{self.n_workers} worker(s)"
                 + (f", {self.files_per_minute:.1f} files/min" if self.n_ok + self.n_failed
                    else "") + "."]
        fails = self.failed
        if fails:
            width = max(len(os.path.basename(r["input"])) for r in fails[:max_failures])
            lines.append("Failed:")
            for r in fails[:max_failures]:
                lines.append(f"  {os.path.basename(r['input']):<{width}}  "
                             f"{r.get('error_type') or ''}: {r.get('error') or ''}")
            if len(fails) > max_failures:
                lines.append(f"  ... and {len(fails) - max_failures} more")
        n_warn = sum(bool(r.get("warnings")) for r in self.records)
        if n_warn:
            lines.append(f"{n_warn} file(s) gave warnings (see 'warnings' in the manifest).")
        lines.append(f"Outputs in {self.output_dir}; manifest {self.manifest}.")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _file_seed(seed, name):
    """Per-file seed from the batch seed and the input's name (not its order or worker)."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _pipeline_defaults():
    from .pipeline import enhance_fits

    return {name: p.default for name, p in inspect.signature(enhance_fits).parameters.items()
            if name not in _PIPELINE_FIXED and p.default is not inspect.Parameter.empty}


def _check_options(enhance_options):
    from .pipeline import enhance_fits

    params = inspect.signature(enhance_fits).parameters
    allowed = [p for p in params if p not in _PIPELINE_FIXED]
    bad = [k for k in enhance_options if k not in allowed]
    if bad:
        raise InputError(f"unknown option(s) {', '.join(bad)} for run_batch; options passed "
                         f"on to enhance_fits are {', '.join(allowed)}")


@contextlib.contextmanager
def _sigint_ignored():
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _start_local_cluster(n_workers):
    import logging

    from distributed import Client, LocalCluster

    # Worker processes inherit an *ignored* SIGINT (kept across exec, and then Python and
    # asyncio install no handler): Ctrl-C reaches only this process, which cancels the work
    # and closes the cluster, instead of every worker printing a KeyboardInterrupt traceback.
    # The cost: Ctrl-C is ignored during the few seconds the workers take to start.
    # Logs at CRITICAL only: a worker whose heartbeat meets the scheduler closing (at the end
    # of a run, or after Ctrl-C/SIGTERM) logs an ERROR with a traceback, which is noise here;
    # every file's failure is reported in the manifest and the summary.
    # No dashboard; the scheduler's small HTTP server (health checks) gets a free port instead
    # of 8787, which another cluster or a Jupyter dashboard may hold (distributed then printed
    # a multi-line "Port 8787 is already in use" warning at every run).
    with _sigint_ignored():
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL,
                               scheduler_kwargs={"dashboard_address": ":0"})
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


def _connect(client):
    from distributed import Client

    if isinstance(client, (str, os.PathLike)):
        s = os.fspath(client)
        if os.path.isfile(s):
            return Client(scheduler_file=s), True
        return Client(s), True
    return client, False


def run_batch(inputs, output_dir, *, method=None, client=None, n_workers=None, resume=True,
              overwrite=False, remove_stars=False, progress=False, **enhance_options):
    """Enhance many files in parallel with dask.distributed; resumable and failure-tolerant.

    Every input is processed by `~astro_enhance.pipeline.enhance_fits` on a dask worker and
    written as ``<output_dir>/<stem>_enhanced.fits`` (temporary name + rename, so an output
    is always complete). Each worker builds the enhancer (loads the model) once and reuses
    it for every file it processes. A file that fails (unreadable, no WCS, ...) is recorded
    with its reason and the batch goes on. The manifest ``batch_manifest.jsonl`` gets one
    line per file as it finishes; running the same batch again skips the inputs whose output
    exists and still has the recorded sha256, and redoes the others (failed, interrupted or
    changed). See the module documentation for the files written.

    Parameters
    ----------
    inputs : str, path-like or iterable of them
        Files, glob patterns or directories; see `expand_inputs`.
    output_dir : str or path-like
        Output directory (created if needed). On a cluster it must be visible to the workers
        under the same path, as must the inputs.
    method : str, optional
        Enhancer name; default: the best available (`~astro_enhance.pipeline.default_method`).
    client : `distributed.Client` or str, optional
        An existing cluster: a client, a scheduler address (``"tcp://host:8786"``) or a
        scheduler file. It is used as it is (its workers' threads are not changed). Default:
        a `distributed.LocalCluster` started for this batch and closed at the end.
    n_workers : int, optional
        Worker processes of the local cluster (one thread each, torch limited to one thread
        each so workers never oversubscribe the cores). Default: the number of usable cores,
        at most the number of files to process. Ignored with ``client``.
    resume : bool, optional
        Skip inputs whose output from an earlier run is intact (default). ``False`` redoes
        every input and replaces its output.
    overwrite : bool, optional
        Replace outputs that an earlier run made with different settings (method, target,
        options). Without it such a batch refuses to start, so a changed command line
        never silently mixes outputs of two methods in one directory.
    remove_stars : bool, optional
        Remove foreground stars before enhancing (see `~astro_enhance.pipeline.enhance_fits`).
    progress : bool, optional
        Show a progress bar across files (on standard error).
    **enhance_options
        Passed to `~astro_enhance.pipeline.enhance_fits`: ``target``, ``device``,
        ``tile_size``, ``overlap``, ``weights``, ``samples``, ``rng``, ``hdu``,
        ``conserve_flux``, ``north_up``. An integer ``rng`` gives each file its own seed
        derived from it and the file name, so results do not depend on scheduling.

    Returns
    -------
    result : `BatchResult`
        Records of this run (``result.table``), counts, ``result.summary()`` and
        ``result.exit_code`` (0 all succeeded, 1 some failed, 2 none succeeded).

    Raises
    ------
    astro_enhance.InputError
        If no input matches, two inputs give the same output name, an option is unknown,
        or outputs made with different settings exist and ``overwrite`` is False.
    astro_enhance.OutputError
        If the output directory cannot be written or another batch is using it.
    astro_enhance.EnhancerError
        If ``method`` is unknown.

    Examples
    --------
    >>> from astro_enhance.batch import run_batch
    >>> result = run_batch("frames/*.fits", "out/", method="bicubic")   # doctest: +SKIP
    >>> print(result.summary())                                         # doctest: +SKIP
    >>> result.exit_code                                                # doctest: +SKIP
    0
    """
    t_start = time.perf_counter()
    out_dir = Path(output_dir).expanduser().absolute()
    # Every check that needs no output directory comes first, so that a wrong command line
    # leaves nothing behind (not even an empty directory).
    paths = expand_inputs(inputs, out_dir)
    _check_options(enhance_options)
    if n_workers is not None and int(n_workers) < 1:
        raise InputError(f"n_workers must be at least 1, got {n_workers}")

    from .enhancers import get_enhancer, list_enhancers
    from .pipeline import default_method

    method = method or default_method()
    names = list(list_enhancers()["name"])
    if method not in names:
        get_enhancer(method)  # raises EnhancerError naming the known enhancers
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {out_dir}: {exc}") from exc
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"output directory {out_dir} is not writable; choose another one")
    rng = enhance_options.pop("rng", None)
    if isinstance(rng, np.random.Generator):
        rng = int(rng.integers(2**62))
    elif rng is not None:
        rng = int(rng)
    options = dict(enhance_options)
    options["remove_stars"] = bool(remove_stars)
    # The settings an output depends on, with enhance_fits's defaults filled in so that the
    # same batch from the command line and from Python compares equal.
    full = _pipeline_defaults()
    full.update(options)
    full["rng"] = rng
    config = {"method": method, **{k: _jsonable(v) for k, v in sorted(full.items())}}
    config = json.loads(json.dumps(config))

    manifest = _Manifest(out_dir / MANIFEST_NAME)
    cluster = own_client = None
    try:
        _remove_temporaries(out_dir)  # of a killed run (we hold the lock)
        done = {}
        for rec in _read_records(manifest.path):
            if rec.get("event") == "file" and rec.get("status") in _DONE:
                done[rec.get("input")] = rec
        run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + \
            secrets.token_hex(3)
        records, todo, conflicts = {}, [], []
        for p in paths:
            out = out_dir / output_name(p)
            prev = done.get(p)
            if resume and prev is not None and out.is_file() \
                    and prev.get("output") == out.name:
                if prev.get("config") != config:
                    conflicts.append((p, prev))
                    if overwrite:
                        todo.append(p)
                    continue
                if prev.get("sha256") and _sha256_file(out) == prev["sha256"]:
                    records[p] = {
                        "event": "file", "run_id": run_id, "input": p, "output": out.name,
                        "status": "skipped", "sha256": prev["sha256"],
                        "data_sha256": prev.get("data_sha256"), "seconds": 0.0,
                        "error": None, "error_type": None, "config": config,
                        "finished": datetime.now(timezone.utc).isoformat(
                            timespec="milliseconds"),
                        "note": f"output verified (sha256) from run {prev.get('run_id')}"}
                    continue
            todo.append(p)
        if conflicts and not overwrite:
            p, prev = conflicts[0]
            old = prev.get("config") or {}
            diff = ", ".join(f"{k}={old.get(k)!r} (now {config.get(k)!r})"
                             for k in sorted(set(old) | set(config))
                             if old.get(k) != config.get(k))
            raise InputError(f"{len(conflicts)} output(s) in {out_dir} were made with other "
                             f"settings: {diff}; use another output directory or pass "
                             "overwrite=True (--overwrite) to replace them")

        if n_workers is None:
            n_workers = max(1, min(_usable_cpus(), len(todo)))
        manifest.append({"event": "run", "run_id": run_id, "started": datetime.now(
            timezone.utc).isoformat(timespec="seconds"), "n_inputs": len(paths),
            "n_todo": len(todo), "n_skipped": len(records), "config": config,
            "resume": bool(resume), "client": str(client) if client is not None else
            f"LocalCluster({n_workers} workers x 1 thread)",
            "astro_enhance": _version()})
        for p in paths:
            if p in records:
                manifest.append(records[p])

        used_workers = 0
        if todo:
            if client is None:
                own_client, cluster = _start_local_cluster(int(n_workers))
                dask_client, torch_threads = own_client, 1
            else:
                dask_client, owned = _connect(client)
                own_client = dask_client if owned else None
                torch_threads = None
            used_workers = len(dask_client.nthreads())
            _run_tasks(dask_client, todo, out_dir, method, options, rng, torch_threads,
                       run_id, config, records, manifest, progress, len(paths))
    finally:
        try:
            if own_client is not None:
                try:
                    own_client.close()
                except Exception:  # noqa: BLE001 - closing must not hide the real error
                    pass
            if cluster is not None:
                try:
                    cluster.close()
                except Exception:  # noqa: BLE001
                    pass
                # Our workers are gone: a file they were writing when the run was interrupted
                # (Ctrl-C, SIGTERM) is incomplete and is removed now, not at the next run.
                _remove_temporaries(out_dir)
        finally:
            manifest.close()

    return BatchResult(records=[records[p] for p in paths], output_dir=out_dir,
                       manifest=out_dir / MANIFEST_NAME,
                       seconds=time.perf_counter() - t_start, n_workers=used_workers,
                       run_id=run_id, method=method)


def _remove_temporaries(out_dir):
    """Remove the temporary files of unfinished outputs (call only while holding the lock)."""
    try:
        names = os.listdir(out_dir)
    except OSError:
        return
    for name in names:
        if _TEMP_RE.match(name):
            try:
                os.unlink(os.path.join(out_dir, name))
            except OSError:
                pass


def _version():
    from .version import __version__

    return __version__


def _run_tasks(client, todo, out_dir, method, options, rng, torch_threads, run_id, config,
               records, manifest, progress, n_total):
    from distributed import as_completed
    from tqdm.auto import tqdm

    futures = {}
    for p in todo:
        opts = dict(options)
        if rng is not None:
            opts["rng"] = _file_seed(rng, os.path.basename(p))
        out = str(out_dir / output_name(p))
        fut = client.submit(_process_file, p, out, method, opts, torch_threads, run_id,
                            config, key=f"astro-enhance-{run_id}-{len(futures)}", pure=False,
                            retries=0)
        futures[fut] = p
    bar = tqdm(total=n_total, initial=n_total - len(todo), unit="file", file=sys.stderr,
               desc="astro-enhance batch", disable=not progress, dynamic_ncols=True)
    try:
        for fut in as_completed(futures):
            p = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker
                rec = {"event": "file", "run_id": run_id, "input": p,
                       "output": output_name(p), "status": "failed", "sha256": None,
                       "data_sha256": None, "seconds": None,
                       "error": "the worker died while processing this file (killed, crashed "
                                f"or out of memory): {_one_line(exc)}",
                       "error_type": exc.__class__.__name__, "config": config,
                       "finished": datetime.now(timezone.utc).isoformat(
                           timespec="milliseconds")}
            manifest.append(rec)
            records[p] = rec
            bar.update(1)
            if rec["status"] == "failed":
                bar.set_postfix(failed=sum(r["status"] == "failed" for r in records.values()),
                                refresh=False)
            fut.release()
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        bar.close()
