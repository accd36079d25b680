"""The small PromQL reader the dashboard and rule tests rely on."""

from __future__ import annotations

import pytest

from deploy.observability import base_queries, is_number, label_names, metric_names, split_top_level


def test_metric_names_skip_functions_keywords_labels_strings_and_durations() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, task) (rate(a_bucket{job=~"x.*", task!="y"}[5m]'
        " offset 1h))) / on(task) group_left sum without (instance) (b_total) > bool 1e3"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}
    assert label_names(expr) == {"le", "task", "job", "instance"}


def test_a_string_that_looks_like_a_metric_is_not_one() -> None:
    assert metric_names('label_replace(up, "dst", "$1", "src", "(other_metric)")') == {"up"}


def test_an_unknown_function_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown PromQL function"):
        metric_names("made_up(foo_total[5m])")


def test_split_at_top_level_comparison_and_set_operators_only() -> None:
    expr = 'sum(rate(a{x=">"}[5m])) / sum(b) > 0.05 and on(t) max(c) >= bool 3 unless d < 2'
    assert split_top_level(expr) == [
        'sum(rate(a{x=">"}[5m])) / sum(b)',
        "0.05",
        "max(c)",
        "3",
        "d",
        "2",
    ]
    assert base_queries(expr) == ['sum(rate(a{x=">"}[5m])) / sum(b)', "max(c)", "d"]


def test_operator_words_inside_names_are_not_operators() -> None:
    assert split_top_level("brand_total > 1 or order_count") == ["brand_total", "1", "order_count"]


@pytest.mark.parametrize(
    ("text", "number"),
    [("0.05", True), ("1e3", True), ("-2", True), ("x", False), ("0.9 * x", False)],
)
def test_is_number(text: str, number: bool) -> None:
    assert is_number(text) is number
