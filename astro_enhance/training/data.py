"""Training data: simulated shards and user FITS pairs, normalised exactly as at inference.

Every sample is normalised the way `astro_enhance.enhancers.TorchEnhancer` normalises an
image it enhances: NaNs are filled with zero, the noise ``sigma`` is estimated with
`astro_enhance.normalize.estimate_noise` on the **whole** (resampled) input image, and the
input and the target are both stretched with ``asinh(x / (k * sigma))`` using that same
sigma (``k = 3``). Patches are cut only after this, so a patch never sees a different
normalisation from the full image it came from.
"""

from pathlib import Path

import numpy as np

from ..normalize import DEFAULT_SOFTENING, asinh_stretch, estimate_noise, fill_nans

__all__ = ["StretchedPairs", "ShardDataset", "ColourShardDataset", "FitsPairDataset",
           "load_shards", "augment", "synthetic_shard"]


def augment(arrays, rng):
    """Apply the same random flip / 90-degree rotation to several images.

    These are the symmetries that keep the physics (a PSF is symmetric enough, noise is
    isotropic): the 8 elements of the dihedral group of the square.

    Parameters
    ----------
    arrays : sequence of ndarray, shape (..., H, W)
        Images to transform identically.
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    list of ndarray
        Transformed (contiguous) copies.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> b, c = augment([a, 10 * a], np.random.default_rng(0))
    >>> b.shape in {(2, 3), (3, 2)}, bool(np.array_equal(c, 10 * b))
    (True, True)
    >>> sorted(b.ravel().tolist()) == sorted(a.ravel().tolist())
    True
    """
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        b = np.rot90(a, k, axes=(-2, -1))
        if flip:
            b = b[..., ::-1]
        out.append(np.ascontiguousarray(b))
    return out


class StretchedPairs:
    """In-memory set of stretched (input, target) image pairs with random patch sampling.

    Parameters
    ----------
    inputs : list of ndarray, shape (H, W)
        Resampled input images in physical units (NaN allowed; filled with 0).
    targets : dict of str -> list of ndarray
        Target images on the same grids, e.g. ``{"truth": [...], "decals": [...]}``; each
        of shape (H, W), or (C, H, W) for a several-band target (``colorize``), stretched
        with the input's sigma.
    sigmas : sequence of float, optional
        Noise of each input; estimated with `estimate_noise` on the whole filled input
        when not given.
    softening : float, optional
        Softening ``k`` of the stretch.
    meta : dict of str -> sequence, optional
        Per-sample metadata (band, seed...).

    Attributes
    ----------
    x : list of ndarray, float32
        Stretched inputs.
    y : dict of str -> list of ndarray, float32
        Stretched targets.
    sigma : ndarray, float64
        Noise used to stretch each sample.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = [np.zeros((32, 32), np.float32) for _ in range(2)]
    >>> inputs = [t + rng.normal(0, 1, t.shape).astype(np.float32) for t in truth]
    >>> pairs = StretchedPairs(inputs, {"truth": truth}, sigmas=[1.0, 1.0])
    >>> len(pairs), pairs.target_names
    (2, ('truth',))
    >>> batch = pairs.sample(4, 16, np.random.default_rng(1))
    >>> batch["input"].shape, batch["truth"].shape, batch["sigma"].tolist()
    ((4, 1, 16, 16), (4, 1, 16, 16), [1.0, 1.0, 1.0, 1.0])
    """

    def __init__(self, inputs, targets, *, sigmas=None, softening=DEFAULT_SOFTENING, meta=None):
        self.softening = float(softening)
        self.x, self.sigma, self.valid = [], [], []
        self.y = {k: [] for k in targets}
        self.meta = dict(meta or {})
        for i, raw in enumerate(inputs):
            filled, bad = fill_nans(raw)
            if sigmas is not None and sigmas[i] is not None:
                sig = float(sigmas[i])
            else:
                sig = estimate_noise(filled, mask=bad if bad.any() else None)
            self.sigma.append(sig)
            self.x.append(asinh_stretch(filled, sig, softening=self.softening))
            good = ~bad
            for key in targets:
                t, tbad = fill_nans(targets[key][i])
                good &= ~(tbad.any(axis=0) if tbad.ndim == 3 else tbad)
                self.y[key].append(asinh_stretch(t, sig, softening=self.softening))
            self.valid.append(good)
        self.sigma = np.asarray(self.sigma, dtype=np.float64)

    def __len__(self):
        return len(self.x)

    @property
    def target_names(self):
        """tuple of str: available target keys."""
        return tuple(self.y)

    def sample(self, batch_size, patch, rng, *, targets=None, augment_data=True,
               center_frac=0.0):
        """Draw a batch of random patches.

        Parameters
        ----------
        batch_size : int
            Number of patches.
        patch : int
            Patch side in pixels (images smaller than this are used whole, after
            cropping to a common size).
        rng : numpy.random.Generator
            Random generator (the only source of randomness).
        targets : sequence of str, optional
            Target keys to return (default all).
        augment_data : bool, optional
            Apply random flips / rotations.
        center_frac : float, optional
            Fraction of patches cut near the image centre (within a third of a patch),
            where simulated scenes put their galaxy; the rest are uniform.

        Returns
        -------
        batch : dict
            ``"input"``: float32 (B, 1, P, P); one entry per target key, (B, 1, P, P) or
            (B, C, P, P) for a C-band target; ``"valid"``: bool (B, 1, P, P); ``"sigma"``:
            float64 (B,); ``"index"``: (B,).
        """
        keys = list(targets) if targets is not None else list(self.y)
        p = int(min([patch] + [min(a.shape) for a in self.x]))
        idx = rng.integers(len(self.x), size=batch_size)
        out = {"input": [], "valid": [], **{k: [] for k in keys}}
        for i in idx:
            ny, nx = self.x[i].shape
            if center_frac and rng.random() < center_frac:
                j = p // 3
                y0 = int(np.clip((ny - p) // 2 + rng.integers(-j, j + 1), 0, ny - p))
                x0 = int(np.clip((nx - p) // 2 + rng.integers(-j, j + 1), 0, nx - p))
            else:
                y0 = int(rng.integers(ny - p + 1))
                x0 = int(rng.integers(nx - p + 1))
            sl = (Ellipsis, slice(y0, y0 + p), slice(x0, x0 + p))
            arrs = [self.x[i][sl], self.valid[i][sl]] + [self.y[k][i][sl] for k in keys]
            if augment_data:
                arrs = augment(arrs, rng)
            out["input"].append(arrs[0])
            out["valid"].append(arrs[1])
            for k, a in zip(keys, arrs[2:]):
                out[k].append(a)
        batch = {k: np.stack(v) for k, v in out.items()}
        batch = {k: v[:, None] if v.ndim == 3 else v for k, v in batch.items()}
        batch["sigma"] = self.sigma[idx]
        batch["index"] = idx
        return batch


def load_shards(path, *, split=None, bands=None, max_samples=None):
    """Read simulated shards written by `astro_enhance.simulate.write_shards`.

    Parameters
    ----------
    path : str or path-like or list
        Shard directory, one ``.npz`` shard, or a list of them.
    split : str, optional
        Only read shards whose name starts with ``split + "-"``.
    bands : sequence of str, optional
        Keep only these bands.
    max_samples : int, optional
        Stop after this many samples.

    Returns
    -------
    data : dict of str -> ndarray
        Concatenated arrays (``input``, ``truth``, ``decals``, ``band``, ``seed``,
        ``sigma_sdss``, ``sigma_decals`` when present); the images are a list of 2-D
        arrays when shards of different image sizes are mixed (e.g. parametric and
        `astro_enhance.real_morphology` shards in one directory).

    Raises
    ------
    FileNotFoundError
        If no shard is found.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = synthetic_shard(d, n=2, size=32, rng=np.random.default_rng(0))
    >>> data = load_shards(d, split="train")
    >>> data["input"].shape, data["truth"].shape, data["seed"].tolist()
    ((2, 32, 32), (2, 32, 32), [0, 1])
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            pattern = f"{split}-*.npz" if split else "*.npz"
            files += sorted(p.glob(pattern))
        elif p.exists():
            files.append(p)
    if not files:
        raise FileNotFoundError(f"no shard (*.npz) found in {paths}; generate some with "
                                f"'astro-enhance simulate --split train --out DIR'")
    keys = ("input", "truth", "decals", "band", "seed", "sigma_sdss", "sigma_decals")
    acc = {k: [] for k in keys}
    n = 0
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            sel = np.ones(len(z["input"]), dtype=bool)
            if bands is not None and "band" in z:
                sel &= np.isin(z["band"].astype(str), list(bands))
            for k in keys:
                if k in z:
                    acc[k].append(z[k][sel])
            n += int(sel.sum())
        if max_samples is not None and n >= max_samples:
            break
    data = {}
    for k, v in acc.items():
        if not v:
            continue
        if len({a.shape[1:] for a in v}) > 1:
            # shards of different image sizes (parametric and real-morphology pairs):
            # a list of per-row images
            data[k] = [row for a in v for row in a]
        else:
            data[k] = np.concatenate(v)
    if max_samples is not None:
        data = {k: v[:max_samples] for k, v in data.items()}
    return data


class ShardDataset(StretchedPairs):
    """Simulated training pairs read from shards.

    Parameters
    ----------
    path : str or path-like or list
        Shard directory or files (see `load_shards`).
    split : str, optional
        Shard name prefix (``"train"``, ``"val"``...).
    targets : sequence of str, optional
        Which targets to keep: ``"truth"`` (noiseless, for the U-Net) and/or
        ``"decals"`` (realistic noisy DECaLS-like image, for the GAN).
    bands : sequence of str, optional
        Keep only these bands.
    max_samples : int, optional
        Read at most this many samples.
    softening : float, optional
        Softening ``k`` of the stretch.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = synthetic_shard(d, n=2, size=32, rng=np.random.default_rng(0))
    >>> ds = ShardDataset(d)
    >>> ds.sample(3, 16, np.random.default_rng(1))["input"].shape
    (3, 1, 16, 16)
    """

    def __init__(self, path, *, split=None, targets=("truth", "decals"), bands=None,
                 max_samples=None, softening=DEFAULT_SOFTENING):
        data = load_shards(path, split=split, bands=bands, max_samples=max_samples)
        missing = [t for t in targets if t not in data]
        if missing:
            raise KeyError(f"shards lack target(s) {missing}; they hold {sorted(data)}")
        meta = {k: data[k] for k in ("band", "seed") if k in data}
        super().__init__(list(data["input"]), {t: list(data[t]) for t in targets},
                         softening=softening, meta=meta)


class ColourShardDataset(StretchedPairs):
    """One band in, several bands out: simulated pairs for the ``colorize`` enhancer.

    Shard rows of the same scene (seed) are grouped: the input is the resampled SDSS image
    of ``input_band``; each target is the (C, H, W) stack of that target in ``bands``
    (e.g. the noiseless g, r, z truth), all stretched with the input's sigma, as
    `astro_enhance.enhancers.TorchEnhancer` does at inference. Scenes lacking a band are
    left out.

    Parameters
    ----------
    path : str or path-like or list
        Shard directory or files (see `load_shards`), simulated with all of ``bands``
        and ``input_band`` (``astro-enhance simulate --bands g,r,z``).
    split : str, optional
        Shard name prefix.
    input_band : str, optional
        Band of the input image (default ``"r"``).
    bands : sequence of str, optional
        Output bands, in plane order (default g, r, z).
    targets : sequence of str, optional
        Targets to stack (``"truth"`` and/or ``"decals"``).
    max_samples : int, optional
        Read at most this many shard rows.
    softening : float, optional
        Softening ``k`` of the stretch.

    Raises
    ------
    ValueError
        If no scene holds every band asked for.

    Examples
    --------
    >>> import tempfile
    >>> from astro_enhance.simulate import write_shards
    >>> d = tempfile.mkdtemp()
    >>> _ = write_shards(d, n=1, split="val", bands="g,r,z", stamp_arcsec=16)
    >>> ds = ColourShardDataset(d, bands=("g", "r", "z"))
    >>> ds.bands, ds.y["truth"][0].shape[0], ds.sample(2, 16, np.random.default_rng(0))[
    ...     "truth"].shape
    (('g', 'r', 'z'), 3, (2, 3, 16, 16))
    """

    def __init__(self, path, *, split=None, input_band="r", bands=("g", "r", "z"),
                 targets=("truth",), max_samples=None, softening=DEFAULT_SOFTENING):
        bands = tuple(bands)
        want = sorted(set(bands) | {input_band})
        data = load_shards(path, split=split, bands=want, max_samples=max_samples)
        missing = [t for t in targets if t not in data]
        if missing:
            raise KeyError(f"shards lack target(s) {missing}; they hold {sorted(data)}")
        if "band" not in data or "seed" not in data:
            raise ValueError("colour training needs shards with 'band' and 'seed' columns "
                             "(astro-enhance simulate --bands g,r,z)")
        rows = {}
        for i, (b, s) in enumerate(zip(data["band"].astype(str), data["seed"])):
            rows.setdefault(int(s), {})[b] = i
        seeds = [s for s in sorted(rows) if all(b in rows[s] for b in want)]
        if not seeds:
            raise ValueError(f"no scene in {path} holds every band of {want}; simulate the "
                             f"shards with --bands {','.join(want)}")
        inputs = [data["input"][rows[s][input_band]] for s in seeds]
        tg = {t: [np.stack([data[t][rows[s][b]] for b in bands]) for s in seeds]
              for t in targets}
        self.input_band, self.bands = str(input_band), bands
        meta = {"seed": np.asarray(seeds, dtype=np.int64),
                "band": np.array([input_band] * len(seeds))}
        super().__init__(inputs, tg, softening=softening, meta=meta)


class FitsPairDataset(StretchedPairs):
    """Training pairs from the user's own FITS images, aligned by WCS.

    Each input is (optionally) resampled onto the target survey grid exactly as the
    pipeline does, and the target image is then reprojected onto that grid with
    ``astro_enhance.resample(target, wcs_out=..., shape_out=...)``, so pixels correspond.

    Parameters
    ----------
    pairs : sequence of (input, target)
        Anything `astro_enhance.io.read_image` accepts (paths, HDUs, ``(array, WCS)``).
    survey : str or None, optional
        Survey grid to resample the input to first (``"decals"``, as the pipeline does);
        None keeps the input grid.
    softening : float, optional
        Softening ``k`` of the stretch.

    Examples
    --------
    A pair of HDUs on the same grid (``survey=None`` keeps the input grid):

    >>> from astro_enhance.sample_data import make_sdss_sample
    >>> hdu = make_sdss_sample(shape=(64, 64))
    >>> ds = FitsPairDataset([(hdu, hdu)], survey=None)
    >>> len(ds), ds.target_names, ds.x[0].shape
    (1, ('target',), (64, 64))
    """

    def __init__(self, pairs, *, survey="decals", softening=DEFAULT_SOFTENING):
        from ..io import read_image
        from ..resample import resample
        inputs, targets = [], []
        for inp, tgt in pairs:
            img = read_image(inp)
            if survey is not None:
                img = resample(img, survey, return_type="image")
            timg = read_image(tgt)
            timg = resample(timg, wcs_out=img.wcs, shape_out=img.data.shape,
                            return_type="image")
            inputs.append(np.asarray(img.data, dtype=np.float32))
            targets.append(np.asarray(timg.data, dtype=np.float32))
        super().__init__(inputs, {"target": targets}, softening=softening)


def synthetic_shard(out_dir, *, n=4, size=64, split="train", first_seed=0, rng=None):
    """Write a tiny shard of toy galaxy pairs in the shard format (for tests and demos).

    Each pair is a random elliptical exponential profile; ``truth`` is noiseless and sharp,
    ``decals`` adds low noise, ``input`` is blurred with a wider Gaussian and noisier.

    Parameters
    ----------
    out_dir : str or path-like
        Directory (created).
    n : int, optional
        Number of pairs.
    size : int, optional
        Image side.
    split : str, optional
        Split name used in the file name.
    first_seed : int, optional
        Seed recorded for the first pair.
    rng : numpy.random.Generator, optional
        Random generator.

    Returns
    -------
    pathlib.Path
        The shard file.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> path = synthetic_shard(tempfile.mkdtemp(), n=2, size=32, rng=np.random.default_rng(0))
    >>> path.suffix
    '.npz'
    >>> with np.load(path) as z:
    ...     print(z["input"].shape, z["input"].dtype)
    (2, 32, 32) float32
    """
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(rng)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    ins, truths, decs, sig_s, sig_d = [], [], [], [], []
    for _ in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        q, th = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
        r = rng.uniform(2.0, 6.0)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(th) + dy * np.sin(th)
        v = (-dx * np.sin(th) + dy * np.cos(th)) / q
        flux = rng.uniform(50, 300)
        img = np.exp(-np.hypot(u, v) / r)
        img *= flux / img.sum()
        truth = gaussian_filter(img, 1.0)
        s_s, s_d = 0.05, 0.015
        inp = gaussian_filter(img, 2.0) + rng.normal(0, s_s, img.shape)
        dec = truth + rng.normal(0, s_d, img.shape)
        ins.append(inp)
        truths.append(truth)
        decs.append(dec)
        sig_s.append(s_s)
        sig_d.append(s_d)
    f = out_dir / f"{split}-{first_seed:08d}.npz"
    np.savez(f, input=np.asarray(ins, np.float32), truth=np.asarray(truths, np.float32),
             decals=np.asarray(decs, np.float32), band=np.array(["r"] * n),
             seed=np.arange(first_seed, first_seed + n, dtype=np.int64),
             sigma_sdss=np.asarray(sig_s), sigma_decals=np.asarray(sig_d))
    return f
