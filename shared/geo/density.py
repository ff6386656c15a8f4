"""Kernel-density engine: report positions in, per-cell densities out.

Pure array code (no I/O, logging or settings) so the web tier, the workers, the tests and the
benchmark all run the very same numbers.

Coordinates are continuous *cell units*: ``u`` is the column coordinate, ``v`` the row
coordinate; cell ``(r, c)`` covers ``u`` in ``[c, c+1)`` and ``v`` in ``[r, r+1)`` and its centre
is ``(c + 0.5, r + 0.5)``. Row 0 is the top (north).

The density is the classic binned KDE (Wand & Jones 1995, ch. 4 / appendix D): linear binning
onto the grid, then a discrete Gaussian convolution. Its cost is O(N + cells) instead of the
O(N x cells) of an exact sum; against the exact sum (``exact_density``) the error stays under
1 % of the peak for sigma >= 2.5 cells unless many reports sit on one exact spot (see
``density``, tests/unit/shared/geo/test_density.py and docs/BENCHMARKS.md).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

# scipy.fft, not scipy.signal: signal's import pulls in scipy.stats (~1.3 s of every web and
# worker start, measured with `python -X importtime`), for the one convolution we need.
from scipy import fft, ndimage

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = npt.ArrayLike

#: Kernels are cut at this many standard deviations (scipy.ndimage's default, mass lost 6e-5).
TRUNCATE = 4.0

#: ``smooth`` uses ``scipy.ndimage.gaussian_filter`` below this sigma (cells) and a separable
#: FFT convolution (``scipy.fft``) from it on. The direct filter costs O(cells x sigma), the FFT
#: O(cells x log cells) with a larger constant, so the FFT wins for wide kernels. Measured on the
#: 2-core dev box (``python bench/density.py``, float64, grids padded by 4 sigma; see
#: docs/BENCHMARKS.md): the FFT is faster from sigma 4 on the 256 grid and from sigma 6 on the
#: 1024 grid; between 4 and 6 the two paths are within ~20 % of each other, and at sigma 2.5
#: the direct filter is ~1.5x faster. 6.0 follows the large grid, where the milliseconds are.
FFT_SIGMA_THRESHOLD = 6.0

#: Points handled per pass in ``linear_bin``: the 6 temporaries of a chunk (~0.8 MB) and most
#: grid lines it touches stay in the per-core L2 cache (2 MB on the dev box); 8k-32k measured
#: alike, 4k was 10 % slower (Python overhead per chunk).
_BIN_CHUNK = 1 << 14

#: Mean variance (cell^2 per axis) that linear binning adds to the kernel; see ``density``.
_BINNING_VARIANCE = 1.0 / 6.0

#: Work arrays of ``exact_density`` hold at most this many (query, point) pairs (~32 MB each).
_EXACT_BLOCK = 1 << 22

SmoothMethod = Literal["auto", "ndimage", "fft"]


def _as_coords(u: ArrayLike, v: ArrayLike) -> tuple[FloatArray, FloatArray]:
    uu = np.ascontiguousarray(u, dtype=np.float64).ravel()
    vv = np.ascontiguousarray(v, dtype=np.float64).ravel()
    if uu.shape != vv.shape:
        raise ValueError(f"u and v differ in length: {uu.size} != {vv.size}")
    return uu, vv


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    rows, cols = (int(shape[0]), int(shape[1]))
    if rows < 1 or cols < 1:
        raise ValueError(f"grid shape must be positive, got {shape!r}")
    return rows, cols


def linear_bin(u: ArrayLike, v: ArrayLike, shape: tuple[int, int]) -> FloatArray:
    """Linear (bilinear / cloud-in-cell) binning onto cell centres.

    Each point's unit mass is split among the 4 nearest cell CENTRES with bilinear weights, so
    the binned KDE's error is second order in the cell size (simple binning: first order).
    Mass that lands on centres outside the grid is dropped: callers pad the
    grid with a 4-sigma margin and crop. NaN/inf points are ignored. Returns float64 ``shape``.

    Why it is built this way (speed, see docs/BENCHMARKS.md): the grid is padded by one cell
    on every side and coordinates are clamped into the padding (``fmax`` also maps NaN into
    it), so there is no per-point mask, no compaction and no bounds check; the padding is cut
    off at the end. A point then needs one flat index and 4 weights, added in place with
    ``np.add.at`` (4 adds per point, the minimum for bilinear weights) into views of one
    buffer shifted by 0, 1, W+2 and W+3: the adds for k+1 and k+W+3 mostly hit the cache lines
    that the adds for k and k+W+2 just loaded. Work runs in L2-sized chunks (a loop over
    chunks, never over points). ``np.add.at`` beats ``np.bincount`` here: it needs no
    full-grid temporary per call and takes views, so no shifted index arrays are built.
    """
    rows, cols = _check_shape(shape)
    uu, vv = _as_coords(u, v)
    wp = cols + 2  # padded width; padded index = real index + 1
    size = (rows + 2) * wp
    # The tail lets the shifted views below reach origin index size-1 (clamped points).
    buf = np.zeros(size + wp + 1)
    corners = (buf, buf[1:], buf[wp:], buf[wp + 1 :])  # weights w00, w01, w10, w11

    n = uu.size
    chunk = max(1, min(_BIN_CHUNK, n))
    fu, fv, iu, iv, w = (np.empty(chunk) for _ in range(5))
    k = np.empty(chunk, dtype=np.intp)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if m != chunk:
            fu, fv, iu, iv, w, k = fu[:m], fv[:m], iu[:m], iv[:m], w[:m], k[:m]
        for src, frac, flo, top in ((uu, fu, iu, cols + 1.0), (vv, fv, iv, rows + 1.0)):
            # Padded coordinate: padded cell j has its centre at j - 0.5, so the left centre
            # of the pair is floor(u + 0.5) and the fraction is what is left. Clamping to
            # [0, W+1] sends far-away points (and NaN, via fmax) whole onto padding centres.
            np.add(src[start : start + m], 0.5, out=frac)
            np.fmax(frac, 0.0, out=frac)
            np.minimum(frac, top, out=frac)
            np.floor(frac, out=flo)
            np.subtract(frac, flo, out=frac)
        np.multiply(iv, wp, out=iv)
        np.add(iv, iu, out=iv)
        k[:] = iv  # exact: the flat index is far below 2**53
        np.multiply(fu, fv, out=w)  # w11 = fu fv
        np.subtract(1.0, fv, out=iu)  # 1 - fv
        np.subtract(fu, w, out=fu)  # w01 = fu (1 - fv)
        np.subtract(iu, fu, out=iu)  # w00 = (1 - fv) - fu (1 - fv)
        np.subtract(fv, w, out=fv)  # w10 = fv (1 - fu)
        for view, weight in zip(corners, (iu, fu, fv, w), strict=True):
            np.add.at(view, k, weight)
    padded = buf[:size].reshape(rows + 2, wp)
    return np.ascontiguousarray(padded[1 : rows + 1, 1 : cols + 1])


def simple_bin(
    u: ArrayLike, v: ArrayLike, shape: tuple[int, int], weights: ArrayLike | None = None
) -> IntArray:
    """Nearest-cell histogram: int64 count of the points inside each cell (with ``weights``,
    integer weights per point: the privacy rule's unit weights).

    Used for the privacy rule, which must count *distinct reports*; linear binning splits a
    report over 4 cells and would make "3 reports within reach" fuzzy. Points outside the grid
    and NaN/inf points are ignored.
    """
    rows, cols = _check_shape(shape)
    uu, vv = _as_coords(u, v)
    with np.errstate(invalid="ignore"):
        inside = (uu >= 0) & (uu < cols) & (vv >= 0) & (vv < rows)  # False for NaN
    c = uu[inside].astype(np.intp)  # truncation = floor for u >= 0, and u < cols
    r = vv[inside].astype(np.intp)
    w = None if weights is None else np.asarray(weights, dtype=np.int64).ravel()[inside]
    counts = np.bincount(r * cols + c, weights=w, minlength=rows * cols)
    return counts.astype(np.int64, copy=False).reshape(rows, cols)


def gaussian_kernel_1d(sigma_cells: float) -> FloatArray:
    """The sampled, normalised 1-D Gaussian that ``gaussian_filter`` uses (radius
    ``int(4 sigma + 0.5)``), shared by the FFT path so both paths compute the same numbers."""
    radius = int(TRUNCATE * sigma_cells + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_cells) ** 2)
    return kernel / kernel.sum()


def smooth(counts: ArrayLike, sigma_cells: float, *, method: SmoothMethod = "auto") -> FloatArray:
    """Gaussian smoothing with std ``sigma_cells``, zero outside the array, kernel cut at 4 sigma.

    The discrete kernel is normalised to sum 1, so mass far from the edges is preserved and a
    smoothed count is "reports per cell". ``method="auto"`` picks ``scipy.ndimage`` below
    ``FFT_SIGMA_THRESHOLD`` and a separable FFT convolution from it on (the two
    agree to ~1e-15 of the peak); ``"ndimage"``/``"fft"`` force one path (tests, benchmark).
    FFT rounding leaves ~1e-16 negatives far from any mass; they are clamped to 0 because a
    density is never negative.
    """
    if not sigma_cells > 0:
        raise ValueError(f"sigma_cells must be positive, got {sigma_cells!r}")
    data = np.asarray(counts, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"counts must be 2-D, got shape {data.shape}")
    if method == "auto":
        method = "fft" if sigma_cells >= FFT_SIGMA_THRESHOLD else "ndimage"
    if method == "ndimage":
        out: FloatArray = ndimage.gaussian_filter(
            data, sigma_cells, mode="constant", cval=0.0, truncate=TRUNCATE
        )
        return out
    if method != "fft":
        raise ValueError(f"unknown smoothing method {method!r}")
    kernel = gaussian_kernel_1d(sigma_cells)
    # Two 1-D passes: ~1.3x faster than one 2-D FFT convolution with the outer-product kernel.
    out = _fft_convolve_same(data, kernel, axis=1)
    out = _fft_convolve_same(out, kernel, axis=0)
    np.maximum(out, 0.0, out=out)
    return out


def _fft_convolve_same(data: FloatArray, kernel: FloatArray, axis: int) -> FloatArray:
    """``data`` convolved with the odd, centred 1-D ``kernel`` along ``axis``, zero outside,
    cropped to ``data``'s shape: what ``scipy.signal.fftconvolve(..., mode="same")`` gives,
    with the same padding to a fast length, without importing scipy.signal."""
    n = data.shape[axis]
    full = n + kernel.size - 1
    size = fft.next_fast_len(full, real=True)
    shape = [1, 1]
    shape[axis] = -1
    spectrum = fft.rfft(data, size, axis=axis) * fft.rfft(kernel, size).reshape(shape)
    out: FloatArray = fft.irfft(spectrum, size, axis=axis)
    start = (full - n) // 2
    keep = [slice(None), slice(None)]
    keep[axis] = slice(start, start + n)
    return out[tuple(keep)]


def density(
    u: ArrayLike,
    v: ArrayLike,
    shape: tuple[int, int],
    sigma_cells: float,
    cell_area_km2: float,
) -> FloatArray:
    """Kernel density in reports per km^2 at every cell centre.

    ``linear_bin`` -> ``smooth`` -> divide by the cell's ground area: the smoothed grid is
    reports per cell, i.e. the Gaussian pdf with std ``sigma_cells`` cells (= sigma metres on
    the ground) summed over reports and integrated over one cell. Points beyond the grid are
    dropped by binning, so pad the grid by ``ceil(4 sigma)`` cells and crop for exact edges.

    Binning bias correction: linear binning smears a point like an extra blur of variance
    E[f (1 - f)] = 1/6 cell^2 per axis (f = the point's fraction between centres), which at
    sigma 2.5 cells lowers peaks by 1.3-2.5 % of the peak for clusters 0.25-1 sigma wide. So the
    grid is smoothed with sigma_eff^2 = sigma^2 - 1/6: the error then falls below 0.1 % of the
    peak for such clusters (tests/unit/shared/geo/test_density.py). The limit is reports stacked on
    one
    spot: there the error is up to 2.7 % of their peak at sigma 2.5 cells (3.8 % without the
    correction), 1.1 % at 4 and 0.3 % at 8; a finer grid is the only cure. Below ~0.6 cells
    the kernel is never narrowed by more than sqrt(2); a cell grid cannot resolve it anyway.
    """
    if not cell_area_km2 > 0:
        raise ValueError(f"cell_area_km2 must be positive, got {cell_area_km2!r}")
    if not sigma_cells > 0:
        raise ValueError(f"sigma_cells must be positive, got {sigma_cells!r}")
    sigma_eff = math.sqrt(max(sigma_cells**2 - _BINNING_VARIANCE, 0.5 * sigma_cells**2))
    out = smooth(linear_bin(u, v, shape), sigma_eff)
    out /= cell_area_km2
    return out


def exact_density(
    px: ArrayLike, py: ArrayLike, qx: ArrayLike, qy: ArrayLike, sigma: float
) -> FloatArray:
    """Reference KDE: at each query ``(qx[i], qy[i])`` the sum over points of the 2-D Gaussian
    pdf with std ``sigma`` (same units as the coordinates), ``exp(-d^2 / 2 s^2) / (2 pi s^2)``.

    For tests and the benchmark only: O(queries x nearby points). Queries are processed in
    spatially sorted blocks, and for each block only points within 9 sigma of its bounding box
    are summed: every dropped term is below exp(-40.5) = 3e-18 of a point's peak, far below
    float64 rounding of the sum. Memory stays bounded by blocks of ``_EXACT_BLOCK`` pairs.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    pxa, pya = _as_coords(px, py)
    qxa, qya = _as_coords(qx, qy)
    finite = np.isfinite(pxa) & np.isfinite(pya)
    pxa, pya = pxa[finite], pya[finite]
    out = np.zeros(qxa.size)
    if pxa.size == 0 or qxa.size == 0:
        return out
    cutoff = 9.0 * sigma
    # Sort queries into tiles of 4 sigma so each block covers a compact area.
    tile = 4.0 * sigma
    tx = np.floor((qxa - qxa.min()) / tile)
    ty = np.floor((qya - qya.min()) / tile)
    order = np.argsort(ty * (tx.max() + 1) + tx, kind="stable")
    qxs, qys = qxa[order], qya[order]
    inv_two_s2 = 1.0 / (2.0 * sigma * sigma)
    norm = 1.0 / (2.0 * math.pi * sigma * sigma)
    qblock = 2048
    result = np.empty(qxa.size)
    for qs in range(0, qxs.size, qblock):
        bx, by = qxs[qs : qs + qblock], qys[qs : qs + qblock]
        near = (
            (pxa >= bx.min() - cutoff)
            & (pxa <= bx.max() + cutoff)
            & (pya >= by.min() - cutoff)
            & (pya <= by.max() + cutoff)
        )
        nx, ny = pxa[near], pya[near]
        acc = np.zeros(bx.size)
        pstep = max(1, _EXACT_BLOCK // bx.size)
        for ps in range(0, nx.size, pstep):
            dx = bx[:, np.newaxis] - nx[np.newaxis, ps : ps + pstep]
            dy = by[:, np.newaxis] - ny[np.newaxis, ps : ps + pstep]
            d2 = dx * dx
            d2 += dy * dy
            d2 *= -inv_two_s2
            acc += np.exp(d2, out=d2).sum(axis=1)
        result[qs : qs + bx.size] = acc
    out[order] = result * norm
    return out
