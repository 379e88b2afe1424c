"""shared.math.sphere against closed forms, torch and manim's own 3D camera.

Also the geometry the scene draws with shared.math.norms: LayerNorm outputs lie in the plane ⟂ (1, …, 1) on the sphere
of radius √d·σ/√(σ² + ε); RMSNorm outputs on the sphere of radius √d·r/√(r² + ε), r = root mean square.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.math.norms import layer_norm, rms_norm
from shared.math.sphere import (
    OrbitCamera,
    circle_in_plane,
    cosine_similarity,
    cosine_similarity_density,
    nearness,
    pca,
    plane_basis,
    query_key_scores,
    random_cosine_similarities,
    slerp,
    sphere_wireframe,
)

ANGLE = st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)
PITCH = st.floats(-1.5, 1.5, allow_nan=False)


def _rot_x(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# ------------------------------------------------------------------------------------------------------------ camera


def test_camera_known_views():
    front = OrbitCamera()
    xy, depth = front.project([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, -2, 0]])
    np.testing.assert_allclose(xy, [[1, 0], [0, 0], [0, 1], [0, 0]], atol=1e-15)
    np.testing.assert_allclose(depth, [0, 1, 0, -2], atol=1e-15)  # +y is away from the viewer
    top = OrbitCamera(pitch=math.pi / 2)  # looking down: x right, y up
    xy, depth = top.project([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(xy, [[1, 0], [0, 1], [0, 0]], atol=1e-15)
    np.testing.assert_allclose(depth, [0, 0, -1], atol=1e-15)
    side = OrbitCamera(yaw=math.pi / 2)  # camera on +x looking back at the origin: +y is to the right
    xy, depth = side.project([[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(xy, [[1, 0], [0, 0]], atol=1e-15)
    np.testing.assert_allclose(depth, [0, -1], atol=1e-15)


@given(ANGLE, PITCH)
@settings(max_examples=50, deadline=None)
def test_camera_basis_is_a_rotation_and_matches_composed_rotations(yaw, pitch):
    basis = OrbitCamera(yaw=yaw, pitch=pitch).basis()
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(basis) == pytest.approx(1.0, abs=1e-14)
    # independent: undo the yaw, map the front view (x, z, −y) to screen axes, then tilt by the pitch
    front = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    np.testing.assert_allclose(basis, _rot_x(pitch) @ front @ _rot_z(-yaw), atol=1e-14)


@pytest.mark.parametrize("phi_deg,theta_deg,focal,zoom", [(70, -30, 12.0, 1.3), (45, 120, 5.0, 0.7), (90, -90, 20, 1)])
def test_camera_matches_manim_three_d_camera(phi_deg, theta_deg, focal, zoom):
    from manim.camera.three_d_camera import ThreeDCamera

    phi, theta = math.radians(phi_deg), math.radians(theta_deg)
    manim_camera = ThreeDCamera(phi=phi, theta=theta, focal_distance=focal, zoom=zoom, exponential_projection=False)
    points = np.random.default_rng(phi_deg).normal(size=(20, 3))
    expected = manim_camera.project_points(points.copy())
    ours = OrbitCamera(yaw=theta + math.pi / 2, pitch=math.pi / 2 - phi, distance=focal, zoom=zoom)
    xy, depth = ours.project(points)
    np.testing.assert_allclose(xy, expected[:, :2], atol=1e-12)
    np.testing.assert_allclose(depth, -expected[:, 2], atol=1e-12)


@given(ANGLE, PITCH, st.one_of(st.none(), st.floats(6.0, 50.0)), st.floats(0.2, 5.0), st.integers(0, 2**31))
@settings(max_examples=60, deadline=None)
def test_camera_round_trip(yaw, pitch, distance, zoom, seed):
    rng = np.random.default_rng(seed)
    target = tuple(rng.normal(size=3))
    camera = OrbitCamera(yaw=yaw, pitch=pitch, distance=distance, zoom=zoom, target=target)
    points = rng.uniform(-2, 2, size=(4, 5, 3)) + np.array(target)  # leading dims are kept
    xy, depth = camera.project(points)
    assert xy.shape == (4, 5, 2) and depth.shape == (4, 5)
    np.testing.assert_allclose(camera.unproject(xy, depth), points, atol=1e-12)
    # depth is distance along the view axis from the target plane: |p − target|² = |in-plane|² + depth²
    in_plane = xy / zoom if distance is None else xy / zoom * ((distance + depth) / distance)[..., None]
    np.testing.assert_allclose((in_plane**2).sum(-1) + depth**2, ((points - target) ** 2).sum(-1), atol=1e-10)


def test_perspective_shrinks_far_points_and_tends_to_orthographic():
    points = np.array([[1.0, -1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])  # near, target plane, far
    xy, _ = OrbitCamera(distance=4.0).project(points)
    np.testing.assert_allclose(xy[:, 0], [4 / 3, 1.0, 4 / 5], atol=1e-15)  # focal / (focal + depth)
    far_eye, _ = OrbitCamera(distance=1e9).project(points)
    ortho, _ = OrbitCamera().project(points)
    np.testing.assert_allclose(far_eye, ortho, atol=1e-8)


def test_points_behind_the_eye_raise():
    with pytest.raises(ValueError, match="behind the eye"):
        OrbitCamera(distance=2.0).project([[0.0, -3.0, 0.0]])


def test_nearness_shades_front_to_back():
    camera = OrbitCamera(yaw=0.4, pitch=0.3)
    toward_viewer = camera.basis()[2]
    r = math.sqrt(3)
    _, depth = camera.project(np.stack([r * toward_viewer, -r * toward_viewer, [0, 0, 0]]))
    np.testing.assert_allclose(nearness(depth, r), [1.0, 0.0, 0.5], atol=1e-15)
    assert nearness(10.0, 1.0) == 0.0 and nearness(-10.0, 1.0) == 1.0


# ------------------------------------------------------------------------------------------------------------ slerp


def _rotation_reference(a, b, t):
    """Rotate a by tΩ in the plane of a and b with torch.linalg.matrix_exp of the plane's generator."""
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    u = a / a.norm()
    w = b / b.norm() - (b / b.norm() @ u) * u
    v = w / w.norm()
    omega = torch.atan2(w.norm(), b / b.norm() @ u)
    generator = torch.outer(v, u) - torch.outer(u, v)  # G u = v, G v = −u
    radius = (1 - t) * a.norm() + t * b.norm()
    return np.stack([(radius[i] * torch.linalg.matrix_exp(float(ti) * omega * generator) @ u).numpy()
                     for i, ti in enumerate(t)])


@pytest.mark.parametrize("dim", [2, 3, 8, 768])
def test_slerp_matches_plane_rotation_and_hits_endpoints(dim):
    rng = np.random.default_rng(dim)
    a, b = rng.normal(size=dim), rng.normal(size=dim)
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # same sphere
    t = np.linspace(0, 1, 11)
    path = slerp(a, b, t)
    assert path.shape == (11, dim)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-13)  # stays on the sphere
    if dim <= 8:  # torch's matrix_exp is slow for big matrices; the invariants below cover 768
        np.testing.assert_allclose(path, _rotation_reference(a, b, torch.tensor(t)), atol=1e-11)
    in_span = np.linalg.lstsq(np.stack([a, b]).T, path.T, rcond=None)[0].T @ np.stack([a, b])
    np.testing.assert_allclose(in_span, path, atol=1e-11)  # stays in the plane of a and b
    # constant angular speed: equal angles between successive samples
    steps = np.arccos(np.clip(cosine_similarity(path[:-1], path[1:]), -1, 1))
    np.testing.assert_allclose(steps, steps[0], atol=1e-7)


def test_slerp_closed_form_on_the_unit_circle_and_scalar_t():
    theta = 2.0
    t = np.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(
        slerp([1, 0], [math.cos(theta), math.sin(theta)], t),
        np.stack([np.cos(t * theta), np.sin(t * theta)], axis=1), atol=1e-15,
    )
    np.testing.assert_allclose(slerp([2, 0, 0], [0, 2, 0], 0.5), [math.sqrt(2), math.sqrt(2), 0], atol=1e-15)


def test_slerp_interpolates_length_linearly_between_spheres():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 3.0])
    path = slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(1, 3, 5), atol=1e-15)


def test_slerp_degenerate_cases():
    np.testing.assert_allclose(slerp([1, 1, 0], [2, 2, 0], 0.5), [1.5, 1.5, 0], atol=1e-15)  # same direction
    with pytest.raises(ValueError, match="opposite"):
        slerp([1, 0, 0], [-1, 0, 0], 0.5)
    with pytest.raises(ValueError, match="non-zero"):
        slerp([0, 0, 0], [1, 0, 0], 0.5)


# ------------------------------------------------------------------------------------------ circles and wireframes


@pytest.mark.parametrize("normal", [(1, 1, 1), (0, 0, 1), (1, 0, 0), (0.3, -2, 0.5)])
def test_circle_in_plane(normal):
    n = np.asarray(normal, dtype=float) / np.linalg.norm(normal)
    u, v = plane_basis(normal)
    np.testing.assert_allclose(np.stack([u, v, n]) @ np.stack([u, v, n]).T, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(np.cross(u, v), n, atol=1e-15)
    center = np.array([0.5, -1.0, 2.0])
    pts = circle_in_plane(normal, math.sqrt(3), n_points=48, center=center)
    assert pts.shape == (48, 3)
    np.testing.assert_allclose(np.linalg.norm(pts - center, axis=1), math.sqrt(3), rtol=1e-14)
    np.testing.assert_allclose((pts - center) @ n, 0.0, atol=1e-14)
    chords = np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1)
    np.testing.assert_allclose(chords, 2 * math.sqrt(3) * math.sin(math.pi / 48), rtol=1e-12)


def test_sphere_wireframe_lies_on_the_sphere():
    r = 2.5
    lines = sphere_wireframe(r, n_meridians=4, n_parallels=3, n_points=40)
    assert len(lines) == 7 and all(line.shape == (40, 3) for line in lines)
    for line in lines:
        np.testing.assert_allclose(np.linalg.norm(line, axis=1), r, rtol=1e-14)
    for i, meridian in enumerate(lines[:4]):  # each meridian's plane holds the z axis
        azimuth = math.pi * i / 4
        np.testing.assert_allclose(meridian @ [-math.sin(azimuth), math.cos(azimuth), 0], 0.0, atol=1e-14)
        assert meridian[:, 2].max() == pytest.approx(r, rel=0.01)
    np.testing.assert_allclose([line[:, 2].std() for line in lines[4:]], 0.0, atol=1e-14)  # parallels: constant z
    np.testing.assert_allclose(lines[5][:, 2], 0.0, atol=1e-15)  # the middle parallel is the equator


# ------------------------------------------------------------------------------------------- norms on the sphere


@pytest.mark.parametrize("dim", [3, 8, 768])
@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.5])
def test_layer_norm_lands_in_the_plane_on_the_sphere(dim, eps):
    rng = np.random.default_rng(dim)
    x = rng.normal(loc=rng.normal(size=(50, 1)), scale=rng.uniform(0.05, 4, size=(50, 1)), size=(50, dim))
    y = layer_norm(x, eps=eps)
    sigma2 = torch.var(torch.from_numpy(x), dim=-1, unbiased=False).numpy()
    np.testing.assert_allclose(y @ np.ones(dim), 0.0, atol=1e-11)  # ⟂ (1, …, 1)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.sqrt(dim * sigma2 / (sigma2 + eps)), rtol=1e-12)
    # subtracting the mean is the orthogonal projection onto that plane
    ones = np.ones(dim) / math.sqrt(dim)
    np.testing.assert_allclose(x - x.mean(axis=1, keepdims=True), x - np.outer(x @ ones, ones), atol=1e-12)
    if dim == 3 and eps == 0.0:  # d = 3: every output is a point of the one circle of radius √3 ⟂ (1, 1, 1)
        u, v = plane_basis((1, 1, 1))
        angle = np.arctan2(y @ v, y @ u)
        on_circle = math.sqrt(3) * (np.cos(angle)[:, None] * u + np.sin(angle)[:, None] * v)
        np.testing.assert_allclose(y, on_circle, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(circle_in_plane((1, 1, 1), math.sqrt(3)), axis=1), math.sqrt(3))


@pytest.mark.parametrize("dim", [3, 64])
def test_rms_norm_lands_on_the_full_sphere(dim):
    x = np.random.default_rng(1).normal(loc=0.7, size=(40, dim))
    eps = 1e-6
    y = rms_norm(x, eps=eps)
    ms = (x**2).mean(axis=1)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.sqrt(dim * ms / (ms + eps)), rtol=1e-12)
    assert np.abs(y.sum(axis=1)).max() > 0.1  # no mean step: not confined to the plane ⟂ 1


# --------------------------------------------------------------------------------------------------------------- PCA


def _align_signs(reference: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """Flip rows of ``reference`` to the sign of ``ours`` (principal directions are defined up to sign)."""
    return reference * np.sign(np.sum(reference * ours, axis=1))[:, None]


def _data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ np.diag(np.linspace(3, 0.2, d)) @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 5


def test_pca_matches_numpy_svd_and_covariance_eigenvalues():
    x = _data()
    result = pca(x, k=3)
    _, s, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(result.components, _align_signs(vt[:3], result.components), atol=1e-12)
    np.testing.assert_allclose(result.explained_variance, s[:3] ** 2 / (len(x) - 1), rtol=1e-12)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    np.testing.assert_allclose(result.explained_variance, eigenvalues[:3], rtol=1e-10)
    np.testing.assert_allclose(result.explained_variance_ratio, eigenvalues[:3] / eigenvalues.sum(), rtol=1e-10)
    np.testing.assert_allclose(result.coords.var(axis=0, ddof=1), result.explained_variance, rtol=1e-12)
    np.testing.assert_allclose(result.components @ result.components.T, np.eye(3), atol=1e-14)
    # the sign convention: each component's largest-magnitude entry is positive
    assert np.all(result.components[np.arange(3), np.abs(result.components).argmax(axis=1)] > 0)


def test_pca_matches_torch_pca_lowrank():
    x = _data(seed=1)
    result = pca(x, k=3)
    torch.manual_seed(0)
    _, s, v = torch.pca_lowrank(torch.from_numpy(x), q=x.shape[1], center=True, niter=4)
    reference = v[:, :3].T.numpy()
    np.testing.assert_allclose(result.components, _align_signs(reference, result.components), atol=1e-10)
    np.testing.assert_allclose(result.explained_variance, s[:3].numpy() ** 2 / (len(x) - 1), rtol=1e-10)
    coords = (torch.from_numpy(x) - torch.from_numpy(x).mean(0)) @ v[:, :3]
    np.testing.assert_allclose(np.abs(result.coords), np.abs(coords.numpy()), atol=1e-10)


def test_pca_keeps_leading_dims_and_reconstructs_a_3d_subspace_exactly():
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(8, 3)))[0].T  # data in a 3D affine subspace of R^8
    x = rng.normal(size=(12, 4, 3)) @ basis + rng.normal(size=8)
    result = pca(x, k=3)
    assert result.coords.shape == (12, 4, 3)
    np.testing.assert_allclose(result.coords, pca(x.reshape(-1, 8), k=3).coords.reshape(12, 4, 3), atol=0)
    np.testing.assert_allclose(result.explained_variance_ratio.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(result.inverse_transform(result.coords), x, atol=1e-12)
    np.testing.assert_allclose(result.transform(x), result.coords, atol=1e-12)
    with pytest.raises(ValueError, match="k must be"):
        pca(x, k=9)


def test_pca_of_the_tiny_transformer_states_stays_in_the_layer_norm_plane():
    from shared.math.tiny_transformer import TinyTransformerConfig, run_tiny_transformer

    acts = run_tiny_transformer(TinyTransformerConfig(n_encoder_layers=6))
    _, states = acts.normalized_states("encoder")  # [12, 4, 8]
    result = pca(states, k=3)
    assert result.coords.shape == states.shape[:-1] + (3,)
    assert 0 < result.explained_variance_ratio.sum() <= 1 + 1e-12
    # LayerNorm outputs are ⟂ 1, so the principal directions are too (the mean lies in the plane as well)
    np.testing.assert_allclose(result.components @ np.ones(8), 0.0, atol=1e-12)


# ---------------------------------------------------------------------------------------- high-dimensional statistics


def test_cosine_similarity_matches_torch():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 7, 16)), rng.normal(size=(5, 7, 16))
    expected = F.cosine_similarity(torch.from_numpy(a), torch.from_numpy(b), dim=-1).numpy()
    np.testing.assert_allclose(cosine_similarity(a, b), expected, atol=1e-14)


@pytest.mark.parametrize("dim,n_pairs", [(3, 4000), (64, 4000), (768, 2000), (12288, 400)])
def test_random_cosines_have_mean_zero_and_variance_one_over_d(dim, n_pairs):
    c = random_cosine_similarities(dim, n_pairs, seed=dim)
    assert c.shape == (n_pairs,) and np.all(np.abs(c) <= 1)
    # closed forms for uniform directions: E c = 0, E c² = 1/d, E c⁴ = 3/(d(d + 2)); allow 5 standard errors
    se_mean = math.sqrt(1 / dim / n_pairs)
    se_second_moment = math.sqrt((3 / (dim * (dim + 2)) - 1 / dim**2) / n_pairs)
    assert abs(c.mean()) < 5 * se_mean
    assert abs(np.mean(c**2) - 1 / dim) < 5 * se_second_moment


def test_random_cosines_in_3d_are_uniform_archimedes():
    n = 4000
    c = np.sort(random_cosine_similarities(3, n, seed=7))
    ks = np.max(np.abs(np.arange(1, n + 1) / n - (c + 1) / 2))  # Kolmogorov–Smirnov distance to U(−1, 1)
    assert ks < 1.95 / math.sqrt(n)  # the 0.1 % critical value


def test_random_cosines_are_deterministic_and_independent_of_chunking():
    a = random_cosine_similarities(50, 300, seed=4)
    np.testing.assert_array_equal(a, random_cosine_similarities(50, 300, seed=4, chunk_size=7))
    assert not np.array_equal(a, random_cosine_similarities(50, 300, seed=5))


@pytest.mark.parametrize("dim", [2, 3, 4, 64, 768, 12288])
def test_cosine_density_is_the_beta_law_with_variance_one_over_d(dim):
    n_cells = 400_000
    c = -1 + (np.arange(n_cells) + 0.5) * (2 / n_cells)  # cell midpoints: the midpoint rule integrates below
    f = cosine_similarity_density(c, dim)
    beta = torch.distributions.Beta(torch.tensor((dim - 1) / 2, dtype=torch.float64),
                                    torch.tensor((dim - 1) / 2, dtype=torch.float64))
    expected = torch.exp(beta.log_prob(torch.from_numpy((c + 1) / 2))).numpy() / 2  # (c + 1)/2 ~ Beta
    np.testing.assert_allclose(f, expected, rtol=1e-9, atol=1e-300)
    if dim >= 3:  # d = 2 has integrable spikes at ±1 that a grid can't integrate
        assert np.sum(f) * (2 / n_cells) == pytest.approx(1.0, abs=1e-6)
        assert np.sum(c**2 * f) * (2 / n_cells) == pytest.approx(1 / dim, rel=1e-5)
    if dim == 3:
        np.testing.assert_allclose(f, 0.5, rtol=1e-12)
    if dim == 2:
        np.testing.assert_allclose(f, 1 / (math.pi * np.sqrt(1 - c**2)), rtol=1e-12)
    assert cosine_similarity_density(1.0, dim) == 0.0 and cosine_similarity_density(-1.5, dim) == 0.0


@pytest.mark.parametrize("dim", [16, 64, 512])
def test_query_key_scores_variance_is_d_before_and_one_after_scaling(dim):
    nq, nk = 300, 300
    raw, scaled = query_key_scores(dim, nq, nk, seed=dim)
    assert raw.shape == scaled.shape == (nq, nk)
    np.testing.assert_array_equal(scaled, raw / math.sqrt(dim))
    # E (q·k)² = d. Scores sharing a query or key are correlated: Cov = 2d; Var (q·k)² = 2d² + 6d.
    var_of_mean = (2 * dim**2 + 6 * dim + 2 * dim * (nk - 1) + 2 * dim * (nq - 1)) / (nq * nk)
    assert abs(np.mean(raw**2) - dim) < 5 * math.sqrt(var_of_mean)
    assert abs(np.mean(scaled**2) - 1) < 5 * math.sqrt(var_of_mean) / dim


def test_unscaled_scores_saturate_softmax():
    from shared.math.attention import softmax

    raw, scaled = query_key_scores(64, 200, 8, seed=0)
    peak_raw, peak_scaled = softmax(raw).max(axis=1).mean(), softmax(scaled).max(axis=1).mean()
    assert peak_raw > 0.8 > 0.5 > peak_scaled  # nearly one-hot vs spread over the 8 keys
