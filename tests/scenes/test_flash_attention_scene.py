"""What FlashAttentionTiles draws (tile scores, running max m, running sum ℓ, rescale α, the merged softmax) agrees
with an independent recomputation and with torch, read back from the scene's inventory of drawn numbers."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scene_catalog import scene_classes

from shared.math.attention import flash_attention

LENGTH, HEAD_DIM, BLOCK, SEED = 12, 4, 4, 0  # FlashConfig defaults


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("flash_attention", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


@pytest.fixture(scope="module")
def qkv():
    return np.random.default_rng(SEED).standard_normal((3, LENGTH, HEAD_DIM))


@pytest.fixture(scope="module")
def scene_module():
    (cls,) = scene_classes()["flash_attention"]
    return sys.modules[cls.__module__]


def test_section_names(record):
    assert [s.name for s in record.sections] == ["存不下的矩阵", "逐块更新", "分块也能合并"]


def test_score_matrix_and_memory(record, qkv):
    q, k, _ = qkv
    section = record.section("存不下的矩阵")
    np.testing.assert_allclose(section.plotted["score_matrix"], q @ k.T / np.sqrt(HEAD_DIM), atol=1e-12)
    n = section.numbers["long_context"]["value"]
    fp16_bytes = torch.empty(0, dtype=torch.float16).element_size()
    gib = section.numbers["long_context_gib"]
    assert gib["value"] == n * n * fp16_bytes / 2**30 and gib["text"] == f"{gib['value']:g}"
    assert section.numbers["float16"]["kind"] == "term"


def _tile_scores(numbers, b):
    return [numbers[f"tile_{b + 1}_scores[0,{j}]"] for j in range(BLOCK)]


def test_tiles_follow_the_online_softmax_recurrence(numbers, qkv):
    """The drawn cells, m, ℓ and α per tile, recomputed from q and k alone (Milakov & Gimelshein 2018; Dao et al.
    2022, Alg. 1)."""
    q, k, _ = qkv
    row = numbers["query_number"] - 1
    scores = q[row] @ k.T / np.sqrt(HEAD_DIM)
    m_prev, l_prev = -np.inf, 0.0
    for b in range(LENGTH // BLOCK):
        tile = scores[b * BLOCK:(b + 1) * BLOCK]
        np.testing.assert_allclose(_tile_scores(numbers, b), tile, atol=1e-12)
        m = max(m_prev, tile.max())
        alpha = np.exp(m_prev - m) if np.isfinite(m_prev) else 0.0
        l = alpha * l_prev + np.exp(tile - m).sum()
        assert numbers[f"tile_{b + 1}_m"] == pytest.approx(m) and numbers[f"tile_{b + 1}_l"] == pytest.approx(l)
        if b > 0:
            assert numbers[f"tile_{b + 1}_alpha"] == pytest.approx(alpha)
        m_prev, l_prev = m, l
    # What the captions say of this row: tile 2 raises the max (α < 1), the last tile does not (α = 1).
    assert numbers["tile_2_alpha"] < 1 and numbers["tile_3_alpha"] == 1.0 == numbers["last_alpha"]


def test_merged_tiles_equal_plain_attention(record, numbers, qkv):
    q, k, v = (torch.tensor(a) for a in qkv)
    row = numbers["query_number"] - 1
    expected = torch.softmax(q[row] @ k.T / np.sqrt(HEAD_DIM), dim=-1).numpy()
    merge = record.section("分块也能合并")
    np.testing.assert_allclose(merge.plotted["flash_weights"], expected, atol=1e-12)
    np.testing.assert_allclose(merge.plotted["plain_weights"], expected, atol=1e-12)
    gap = np.abs(np.subtract(merge.plotted["flash_weights"], merge.plotted["plain_weights"])).max()
    assert numbers["weight_max_difference"] == gap
    assert numbers["weight_max_difference"] < 1e-12
    # The on-screen output difference is the helper's own comparison: check FlashAttention against torch too.
    torch_out = torch.nn.functional.scaled_dot_product_attention(q, k, v).numpy()
    assert numbers["output_max_difference"] < 1e-12
    assert np.abs(flash_attention(*qkv, block_size=BLOCK) - torch_out).max() < 1e-12


def test_query_row_fails_loudly_when_no_row_fits_the_captions(scene_module):
    """Keys whose scores grow along the sequence raise the running max at every tile, so no query has α = 1 at the
    last tile: the scene must refuse rather than fall back to a row that makes its captions false."""
    q = np.ones((LENGTH, HEAD_DIM))
    k = np.arange(LENGTH)[:, None] * np.ones((1, HEAD_DIM)) / HEAD_DIM
    _, trace = flash_attention(q, k, k, block_size=BLOCK, return_trace=True)
    assert all((t["alpha"] < 1).all() for t in trace[1:])
    with pytest.raises(ValueError, match="seed"):
        scene_module.pick_query_row(trace)
    _, two_tiles = flash_attention(q, k, k, block_size=LENGTH // 2, return_trace=True)
    with pytest.raises(ValueError, match="block_size"):
        scene_module.pick_query_row(two_tiles)

