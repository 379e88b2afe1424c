"""The numbers FlashAttentionTiles shows (tile scores, running max m, running sum ℓ, rescale α, the merged softmax)
are the helper's trace, and they agree with an independent recomputation and with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

LENGTH, HEAD_DIM, BLOCK, SEED = 12, 4, 4, 0  # FlashConfig defaults


@pytest.fixture(scope="module")
def numbers(scene_run):
    record, _, _ = scene_run("flash_attention", "16:9")
    return record.numbers


@pytest.fixture(scope="module")
def qkv():
    return np.random.default_rng(SEED).standard_normal((3, LENGTH, HEAD_DIM))


def test_section_names(scene_run):
    record, _, _ = scene_run("flash_attention", "16:9")
    assert [s.name for s in record.sections] == ["存不下的矩阵", "逐块更新", "分块也能合并"]


def test_score_matrix_and_memory(numbers, qkv):
    q, k, _ = qkv
    np.testing.assert_allclose(numbers["score_matrix"], q @ k.T / 2.0, atol=1e-12)
    assert numbers["long_context_gib"] == 32768**2 * 2 / 2**30 == 2.0


def test_tiles_follow_the_online_softmax_recurrence(numbers, qkv):
    """m, ℓ, α per tile, recomputed from the scores alone (Milakov & Gimelshein 2018; Dao et al. 2022, Alg. 1)."""
    q, k, _ = qkv
    row = numbers["query_row"]
    scores = q[row] @ k.T / 2.0
    m_prev, l_prev = -np.inf, 0.0
    for b in range(LENGTH // BLOCK):
        tile = scores[b * BLOCK:(b + 1) * BLOCK]
        np.testing.assert_allclose(numbers[f"tile_{b + 1}_scores"], tile, atol=1e-12)
        m = max(m_prev, tile.max())
        alpha = np.exp(m_prev - m) if np.isfinite(m_prev) else 0.0
        l = alpha * l_prev + np.exp(tile - m).sum()
        state = numbers[f"tile_{b + 1}_state"]
        assert state["m"] == pytest.approx(m) and state["l"] == pytest.approx(l)
        assert state["alpha"] == pytest.approx(alpha)
        m_prev, l_prev = m, l
    # The story the scene tells on this row: tile 2 raises the max (α < 1), tile 3 does not (α = 1).
    assert numbers["tile_2_state"]["alpha"] < 0.9 and numbers["tile_3_state"]["alpha"] == 1.0


def test_merged_tiles_equal_plain_attention(numbers, qkv):
    q, k, v = (torch.tensor(a) for a in qkv)
    row = numbers["query_row"]
    expected = torch.softmax(q[row] @ k.T / 2.0, dim=-1).numpy()
    np.testing.assert_allclose(numbers["flash_weights"], expected, atol=1e-12)
    np.testing.assert_allclose(numbers["plain_weights"], expected, atol=1e-12)
    assert numbers["weight_max_difference"] < 1e-12
    assert numbers["output_max_difference"] < 1e-12
    # The on-screen difference is the helper's own comparison: check it against torch's attention too.
    torch_out = torch.nn.functional.scaled_dot_product_attention(q, k, v).numpy()
    from shared.math.attention import flash_attention

    flash = flash_attention(*qkv, block_size=BLOCK)
    assert np.abs(flash - torch_out).max() < 1e-12
