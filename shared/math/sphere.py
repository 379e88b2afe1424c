"""Geometry and statistics for "vectors on a sphere" (LayerNorm / RMSNorm geometry), in numpy.

- :class:`OrbitCamera`: projects 3D points to 2D screen coordinates plus a depth per point (for shading), orthographic
  or perspective, orbiting the target by yaw/pitch; :meth:`OrbitCamera.unproject` inverts it. 3D is drawn as projected
  2D because Surface-heavy manim 3D is far too slow on a CPU (shared/mobjects/projected.py).
- :func:`slerp`: great-circle interpolation; :func:`circle_in_plane`, :func:`sphere_wireframe`: polylines to draw.
- :func:`pca`: principal components, used to reduce the tiny Transformer's hidden states to 3D.
- :func:`random_cosine_similarities`, :func:`cosine_similarity_density`, :func:`query_key_scores`: why random
  high-dimensional vectors are nearly orthogonal, and why attention divides q·k by √d.

Tested in ``tests/math/test_sphere.py`` against torch and closed forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------------------------------------------ camera


@dataclass(frozen=True)
class OrbitCamera:
    """A camera orbiting ``target``; world z is up, as in manim.

    At ``yaw = pitch = 0`` the camera looks along +y: world x points right on screen and world z points up.
    Screen coordinates follow manim's frame (x right, y up). It projects exactly as manim's ``ThreeDCamera`` with
    ``phi = π/2 − pitch``, ``theta = yaw − π/2``, ``gamma = 0``, ``focal_distance = distance`` and ``zoom``
    (without its ``exponential_projection``), so numpy-drawn and manim-drawn 3D agree.
    """

    yaw: float = 0.0  # radians: turns the camera around the world z axis, counter-clockwise seen from above
    pitch: float = 0.0  # radians: raises the camera above the xy-plane (π/2 looks straight down, x right, y up)
    distance: float | None = None  # eye-to-target distance for perspective; None = orthographic (no foreshortening)
    zoom: float = 1.0  # screen units per world unit at the target's depth
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def basis(self) -> np.ndarray:
        """Rows: screen right, screen up, toward the viewer, in world coordinates (orthonormal, det +1)."""
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        toward_viewer = np.array([sy * cp, -cy * cp, sp])  # target → eye
        right = np.array([cy, sy, 0.0])  # horizontal, so the world's up stays up on screen
        up = np.cross(toward_viewer, right)
        return np.stack([right, up, toward_viewer])

    def project(self, points) -> tuple[np.ndarray, np.ndarray]:
        """World points ``[..., 3]`` → (screen ``[..., 2]``, depth ``[...]``).

        ``depth`` is the distance behind the plane through the target facing the camera (negative = nearer the viewer);
        feed it to :func:`nearness` for opacity or colour. With perspective, a point at depth z is scaled by
        ``distance / (distance + z)`` (a pinhole whose focal length equals ``distance``, like manim's ThreeDCamera).
        """
        camera = (np.asarray(points, dtype=np.float64) - np.asarray(self.target)) @ self.basis().T
        depth = -camera[..., 2]
        xy = camera[..., :2] * self.zoom
        if self.distance is not None:
            in_front = self.distance + depth
            if np.any(in_front <= 0):
                raise ValueError(f"points at or behind the eye (distance {self.distance}): move the camera back")
            xy = xy * (self.distance / in_front)[..., None]
        return xy, depth

    def unproject(self, xy, depth) -> np.ndarray:
        """Inverse of :meth:`project`: screen ``[..., 2]`` and depth ``[...]`` → world points ``[..., 3]``."""
        xy = np.asarray(xy, dtype=np.float64) / self.zoom
        depth = np.asarray(depth, dtype=np.float64)
        if self.distance is not None:
            xy = xy * ((self.distance + depth) / self.distance)[..., None]
        camera = np.concatenate([xy, -depth[..., None]], axis=-1)
        return camera @ self.basis() + np.asarray(self.target)


def nearness(depth, extent: float) -> np.ndarray:
    """Map depth in [−extent, extent] to [1, 0]: 1 for the nearest point, 0 for the farthest (clipped).

    For a sphere of radius r around the target, ``extent = r`` gives the front pole 1 and the back pole 0.
    """
    return np.clip((extent - np.asarray(depth, dtype=np.float64)) / (2.0 * extent), 0.0, 1.0)


# ------------------------------------------------------------------------------------------------ curves on spheres


def slerp(a, b, t) -> np.ndarray:
    """Great-circle interpolation from ``a`` (t = 0) to ``b`` (t = 1), in any dimension.

    The direction turns at constant angular speed in the plane of a and b:
    ``(sin((1 − t)Ω)·â + sin(tΩ)·b̂) / sin Ω``; the length goes linearly from |a| to |b|, so endpoints of equal
    length stay on their sphere for every t.

    Parameters
    ----------
    a, b
        Vectors ``(d,)``, non-zero and not opposite (the great circle through opposite points is not unique).
    t
        Scalar or array of fractions (values outside [0, 1] continue along the circle).

    Returns
    -------
    np.ndarray
        ``t.shape + (d,)``.

    References
    ----------
    Shoemake 1985, "Animating rotation with quaternion curves" (slerp).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("slerp needs non-zero vectors")
    ua, ub = a / na, b / nb
    cos_omega = float(ua @ ub)
    sin_omega = float(np.linalg.norm(ub - cos_omega * ua))  # stable for tiny angles, unlike arccos
    omega = math.atan2(sin_omega, cos_omega)
    radius = (1.0 - t) * na + t * nb
    if omega < 1e-9:  # same direction: the circle degenerates to a point
        return radius[..., None] * ua
    if math.pi - omega < 1e-9:
        raise ValueError("slerp between opposite directions is not unique: pick an intermediate point")
    direction = (np.sin((1.0 - t) * omega)[..., None] * ua + np.sin(t * omega)[..., None] * ub) / math.sin(omega)
    return radius[..., None] * direction


def plane_basis(normal) -> np.ndarray:
    """Two orthonormal vectors ``[2, 3]`` spanning the plane ⟂ ``normal`` (right-handed with the normal)."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    helper = np.eye(3)[np.argmin(np.abs(n))]  # the axis least parallel to n
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    return np.stack([u, np.cross(n, u)])


def circle_in_plane(normal, radius: float, n_points: int = 96, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """``n_points`` equally spaced points ``[n_points, 3]`` on the circle of ``radius`` ⟂ ``normal`` around ``center``.

    With ``normal = (1, 1, 1)`` and ``radius = √3`` this is where LayerNorm puts every 3D vector (for eps → 0).
    """
    u, v = plane_basis(normal)
    angles = np.linspace(0.0, 2.0 * np.pi, n_points, endpoint=False)
    return np.asarray(center, dtype=np.float64) + radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)


def sphere_wireframe(radius: float, n_meridians: int = 6, n_parallels: int = 5, n_points: int = 96) -> list[np.ndarray]:
    """Closed polylines ``[n_points, 3]`` drawing a sphere: ``n_meridians`` great circles through the poles (±z) and
    ``n_parallels`` circles of latitude strictly between the poles (the middle one is the equator when odd)."""
    lines = []
    for i in range(n_meridians):
        azimuth = np.pi * i / n_meridians
        lines.append(circle_in_plane((-math.sin(azimuth), math.cos(azimuth), 0.0), radius, n_points))
    for j in range(1, n_parallels + 1):
        latitude = -np.pi / 2 + np.pi * j / (n_parallels + 1)
        ring = circle_in_plane((0.0, 0.0, 1.0), radius * math.cos(latitude), n_points)
        lines.append(ring + np.array([0.0, 0.0, radius * math.sin(latitude)]))
    return lines


# --------------------------------------------------------------------------------------------------------------- PCA


@dataclass
class PCAResult:
    coords: np.ndarray  # [..., k]: the data in the principal axes (leading dims as the input's)
    components: np.ndarray  # [k, d]: orthonormal principal directions, largest-|entry| of each made positive
    explained_variance: np.ndarray  # [k]: variance along each direction (ddof = 1, as sklearn)
    explained_variance_ratio: np.ndarray  # [k]: fraction of the total variance
    mean: np.ndarray  # [d]

    def transform(self, x) -> np.ndarray:
        """Project new points ``[..., d]`` onto the same axes: ``[..., k]``."""
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T

    def inverse_transform(self, coords) -> np.ndarray:
        """Back to ``[..., d]`` (exact for points in the span of the components)."""
        return np.asarray(coords, dtype=np.float64) @ self.components + self.mean


def pca(x, k: int = 3) -> PCAResult:
    """Principal component analysis of the rows of ``x`` ``[..., d]`` (all leading dims are samples), via SVD.

    References
    ----------
    ``sklearn.decomposition.PCA`` (explained variance with n − 1); ``torch.pca_lowrank``; ``numpy.linalg.svd``.
    """
    x = np.asarray(x, dtype=np.float64)
    rows = x.reshape(-1, x.shape[-1])
    n, d = rows.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"k must be between 1 and min(samples, dims) = {min(n, d)}, got {k}")
    mean = rows.mean(axis=0)
    _, singular, vt = np.linalg.svd(rows - mean, full_matrices=False)
    components = vt[:k]
    signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
    components = components * signs[:, None]  # a deterministic sign: SVD's is arbitrary
    variance = singular**2 / max(n - 1, 1)
    coords = (rows - mean) @ components.T
    return PCAResult(
        coords=coords.reshape(x.shape[:-1] + (k,)),
        components=components,
        explained_variance=variance[:k],
        explained_variance_ratio=variance[:k] / variance.sum(),
        mean=mean,
    )


# -------------------------------------------------------------------------------------------- high-dimensional stats


def cosine_similarity(a, b, axis: int = -1) -> np.ndarray:
    """a·b / (|a| |b|) along ``axis`` (as ``torch.nn.functional.cosine_similarity`` for non-zero vectors)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.sum(a * b, axis=axis) / (np.linalg.norm(a, axis=axis) * np.linalg.norm(b, axis=axis))


def random_cosine_similarities(dim: int, n_pairs: int, seed: int = 0, chunk_size: int = 256) -> np.ndarray:
    """Cosine similarity of ``n_pairs`` pairs of independent standard Gaussian vectors in ``dim`` dimensions.

    Gaussian vectors point in uniformly random directions, so the cosines have mean 0 and variance exactly 1/dim
    (density: :func:`cosine_similarity_density`). Vectors are drawn ``chunk_size`` pairs at a time, so d = 12288
    needs little memory; the draws are made pair by pair, so the result depends only on ``(dim, n_pairs, seed)``.

    Returns
    -------
    np.ndarray
        ``(n_pairs,)`` float64.
    """
    if dim < 2:
        raise ValueError(f"dim must be at least 2, got {dim}")
    rng = np.random.default_rng(seed)
    out = np.empty(n_pairs)
    for start in range(0, n_pairs, chunk_size):
        stop = min(start + chunk_size, n_pairs)
        pairs = rng.standard_normal((stop - start, 2, dim))  # pair by pair, so chunking doesn't change the draws
        out[start:stop] = cosine_similarity(pairs[:, 0], pairs[:, 1])
    return out


def cosine_similarity_density(c, dim: int) -> np.ndarray:
    """Probability density of the cosine between two uniformly random directions in ``dim`` ≥ 2 dimensions.

    f(c) = Γ(d/2) / (√π Γ((d − 1)/2)) · (1 − c²)^((d − 3)/2) on (−1, 1): uniform for d = 3 (Archimedes), and close
    to a normal of standard deviation 1/√d for large d. Equivalently (c + 1)/2 ~ Beta((d − 1)/2, (d − 1)/2).
    """
    if dim < 2:
        raise ValueError(f"dim must be at least 2, got {dim}")
    c = np.asarray(c, dtype=np.float64)
    log_norm = math.lgamma(dim / 2) - 0.5 * math.log(math.pi) - math.lgamma((dim - 1) / 2)
    inside = np.abs(c) < 1
    with np.errstate(divide="ignore"):
        log_body = (dim - 3) / 2 * np.log1p(-np.where(inside, c, 0.0) ** 2)
    return np.where(inside, np.exp(log_norm + log_body), 0.0)


def query_key_scores(dim: int, n_queries: int, n_keys: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Attention scores of random queries and keys with independent N(0, 1) entries.

    Returns
    -------
    (raw, scaled)
        ``raw = q kᵀ`` ``[n_queries, n_keys]``, variance d per entry; ``scaled = raw / √d``, variance 1 — the reason
        for the 1/√d in attention (Vaswani et al. 2017, §3.2.1, footnote 4).
    """
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n_queries, dim))
    k = rng.standard_normal((n_keys, dim))
    raw = q @ k.T
    return raw, raw / math.sqrt(dim)
