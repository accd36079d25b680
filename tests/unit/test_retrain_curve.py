"""The learning curve's pure parts: method names and the choice of labels."""

from __future__ import annotations

import pytest

from retrain.curve import choose, method_overrides


def test_curve_methods_map_to_a_retrain_method_and_its_overrides() -> None:
    assert method_overrides("full", 1) == ("full", {"threads": 1})
    assert method_overrides("lora", 0) == ("lora", {})
    assert method_overrides("lora-top2", 1) == ("lora", {"threads": 1, "lora_layers": 2})
    with pytest.raises(ValueError, match="lora-top<N>"):
        method_overrides("lora-topx", 1)


def test_random_labels_are_seeded_and_uncertain_ones_come_least_confident_first() -> None:
    pool = list(range(10, 20))
    assert choose("random", 4, pool, None) == choose("random", 4, pool, None)
    assert len(set(choose("random", 4, pool, None))) == 4
    assert sorted(choose("random", 50, pool, None)) == pool
    scores = {i: [0.9, 0.05, 0.05] for i in pool}
    scores[13] = [0.34, 0.33, 0.33]  # the least sure
    scores[17] = [0.5, 0.45, 0.05]  # next: a small margin
    assert choose("uncertainty", 2, pool, scores) == [13, 17]
    with pytest.raises(ValueError, match="needs the production model's scores"):
        choose("uncertainty", 2, pool, None)
