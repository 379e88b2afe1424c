"""Spectrum concentration: participation ratio and top-k shares, against their definitions on known spectra."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from shared.math.spectrum import effective_frequencies, top_share


@pytest.mark.parametrize("k", [1, 3, 7])
def test_equal_shares_count_as_k_frequencies(k):
    power = np.zeros(20)
    power[:k] = 1 / k
    assert effective_frequencies(power) == pytest.approx(k)
    assert top_share(power, k) == pytest.approx(1.0) and top_share(power, 1) == pytest.approx(1 / k)


@given(st.lists(st.floats(0.001, 10), min_size=2, max_size=60))
def test_participation_ratio_lies_between_one_and_the_count(weights):
    p = np.array(weights) / np.sum(weights)
    n = effective_frequencies(p)
    assert 1 - 1e-9 <= n <= len(p) + 1e-9
    # Hill's order-2 diversity is never above the order-1 one, exp(entropy)
    assert n <= np.exp(-(p * np.log(p)).sum()) + 1e-9
    assert top_share(p, len(p)) == pytest.approx(1.0)


def test_bad_spectra_are_refused():
    with pytest.raises(ValueError, match="summing to 1"):
        effective_frequencies([0.5, 0.2])
    with pytest.raises(ValueError, match="at least 1"):
        top_share([1.0], 0)
