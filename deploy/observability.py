"""Reading the observability files as data: every panel query, every rule, and what PromQL uses.

The tests use these helpers to check that dashboards and alert rules only use metric names and
labels that ``streams/runtime/metrics.py`` defines, and to evaluate each query against a real
Prometheus server. The PromQL reading here is a small tokenizer, not a parser: it knows enough
(strings, label matchers, range selectors, grouping clauses, function calls) to list metric
names and label names; the real Prometheus (and ``promtool``) judge validity.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEPLOY_DIR = Path(__file__).resolve().parent
PROMETHEUS_DIR = DEPLOY_DIR / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules.yml"
DASHBOARDS_DIR = DEPLOY_DIR / "grafana" / "dashboards"

AGGREGATIONS = frozenset(
    " ".join(
        ["sum min max avg group stddev stdvar count", "count_values bottomk topk quantile"]
    ).split(" ")
)
FUNCTIONS = frozenset(
    " ".join(
        [
            "abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month",
            "day_of_week day_of_year days_in_month delta deriv exp floor histogram_quantile",
            "holt_winters hour idelta increase irate label_join label_replace ln log2 log10",
            "minute month predict_linear rate resets round scalar sgn sort sort_desc sqrt time",
            "timestamp vector year avg_over_time min_over_time max_over_time sum_over_time",
            "count_over_time quantile_over_time stddev_over_time stdvar_over_time",
            "last_over_time present_over_time",
        ]
    ).split(" ")
)
GROUPING = frozenset(("by", "without", "on", "ignoring", "group_left", "group_right"))
KEYWORDS = frozenset(["and", "or", "unless", "bool", "offset", "inf", "nan"]) | GROUPING
COMPARISONS = (">=", "<=", "==", "!=", ">", "<")
SET_OPERATORS = ("and", "or", "unless")

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)")


@dataclass(frozen=True)
class PanelQuery:
    """One query of one dashboard panel."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    legend: str


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule of ``rules.yml``."""

    group: str
    name: str
    expr: str
    for_: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def _strip_strings(expr: str) -> str:
    """``expr`` with the contents of every string literal blanked (quotes kept)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\" and quote != "`":
                out.append("  ")
                i += 2
                continue
            out.append(ch if ch == quote else " ")
            if ch == quote:
                quote = ""
        else:
            if ch in "\"'`":
                quote = ch
            out.append(ch)
        i += 1
    if quote:
        raise ValueError(f"unterminated string in PromQL: {expr!r}")
    return "".join(out)


def _scan(expr: str) -> Iterator[tuple[str, int, str]]:
    """Yield (kind, position, text) for identifiers outside matchers and ranges.

    kind is ``metric``, ``function``, ``keyword`` or ``grouping_label``; label names inside
    ``{...}`` are reported by :func:`label_names` instead.
    """
    text = _strip_strings(expr)
    depth_brace = depth_bracket = 0
    grouping_paren: int | None = None
    paren = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth_brace += 1
        elif ch == "}":
            depth_brace -= 1
        elif ch == "[":
            depth_bracket += 1
        elif ch == "]":
            depth_bracket -= 1
        elif ch == "(":
            paren += 1
        elif ch == ")":
            if grouping_paren == paren:
                grouping_paren = None
            paren -= 1
        if depth_brace or depth_bracket or ch in "{}[]()":
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < len(text) and text[i + 1].isdigit()):
            number = _NUMBER.match(text, i)
            i = number.end() if number else i + 1
            while i < len(text) and text[i].isalpha():  # a duration unit (5m) or exponent
                i += 1
            continue
        match = _IDENT.match(text, i)
        if not match:
            i += 1
            continue
        word = match.group()
        after = text[match.end() :].lstrip()
        if grouping_paren is not None:
            yield "grouping_label", i, word
        elif word in GROUPING:
            yield "keyword", i, word
            if after.startswith("("):
                grouping_paren = paren + 1
        elif word in KEYWORDS:
            yield "keyword", i, word
        elif word in AGGREGATIONS or (after.startswith("(") and word in FUNCTIONS):
            yield "function", i, word
        elif after.startswith("("):
            raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
        else:
            yield "metric", i, word
        i = match.end()


def metric_names(expr: str) -> set[str]:
    """The metric (series) names a PromQL expression selects."""
    names = {word for kind, _, word in _scan(expr) if kind == "metric"}
    for matcher in re.findall(r"__name__\s*=\s*\"([^\"]*)\"", expr):
        names.add(matcher)
    return names


def label_names(expr: str) -> set[str]:
    """Every label name a PromQL expression matches on or groups by."""
    labels = {word for kind, _, word in _scan(expr) if kind == "grouping_label"}
    text = _strip_strings(expr)
    for block in re.findall(r"\{([^}]*)\}", text):
        labels.update(m.group(1) for m in _MATCHER_LABEL.finditer(block))
    return labels - {"__name__"}


def split_top_level(expr: str) -> list[str]:
    """Split an expression at its top-level comparison and set operators.

    ``a > 0.05 and b > 10`` gives ``["a", "0.05", "b", "10"]``. Matching modifiers
    (``on``/``ignoring``/``bool``) directly after an operator are dropped with it. The
    operands are what a rule compares: each non-literal operand is itself a query that must
    return data when the rule can ever fire.
    """
    text = _strip_strings(expr)
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            op = _operator_at(text, i)
            if op:
                parts.append(expr[start:i])
                i += len(op)
                i = _skip_modifiers(text, i)
                start = i
                continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


def _operator_at(text: str, i: int) -> str | None:
    for op in COMPARISONS:
        if text.startswith(op, i):
            return op
    for op in SET_OPERATORS:
        if (
            text.startswith(op, i)
            and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
            and not (i + len(op) < len(text) and (text[i + len(op)].isalnum()))
        ):
            return op
    return None


def _skip_modifiers(text: str, i: int) -> int:
    while True:
        rest = text[i:]
        stripped = rest.lstrip()
        i += len(rest) - len(stripped)
        word = _IDENT.match(stripped)
        if word and word.group() == "bool":
            i += word.end()
            continue
        if word and word.group() in GROUPING:
            i += word.end()
            after = text[i:].lstrip()
            i += len(text[i:]) - len(after)
            if after.startswith("("):
                i += after.index(")") + 1
            continue
        return i


def is_number(operand: str) -> bool:
    """True for a numeric literal operand (a threshold)."""
    return bool(_NUMBER.fullmatch(operand.strip()))


def base_queries(expr: str) -> list[str]:
    """The non-literal operands of a rule expression (see :func:`split_top_level`)."""
    return [part for part in split_top_level(expr) if not is_number(part)]


def exported_series(collectors: Iterable[object]) -> dict[str, set[str]]:
    """Every series name the given prometheus_client metrics export, with their label names.

    Label names come from each metric's declared label names (``_labelnames``: prometheus_client
    has no public accessor for them and a labeled metric without children exports no sample).
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
    }
    out: dict[str, set[str]] = {}
    for collector in collectors:
        describe = getattr(collector, "describe", None)
        if describe is None:
            continue
        labelnames = set(getattr(collector, "_labelnames", ()))
        for family in describe():
            for suffix in suffixes.get(family.type, ("",)):
                extra = {"le"} if suffix == "_bucket" else set()
                out[f"{family.name}{suffix}"] = labelnames | extra
    return out


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """The dashboard JSON files on disk, by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included (rows themselves excluded)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboards: Mapping[str, Mapping[str, Any]]) -> list[PanelQuery]:
    """Every query of every panel of ``dashboards``."""
    out: list[PanelQuery] = []
    for dashboard in dashboards.values():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                out.append(
                    PanelQuery(
                        dashboard=str(dashboard["title"]),
                        panel=str(panel["title"]),
                        ref_id=str(target.get("refId", "")),
                        expr=str(target.get("expr", "")),
                        legend=str(target.get("legendFormat", "")),
                    )
                )
    return out


def load_rules(path: Path = RULES_FILE) -> tuple[list[AlertRule], list[dict[str, Any]]]:
    """The alerting rules and the recording rules of a Prometheus rules file."""
    import yaml  # a dev dependency (the tests); the render script does not need it

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    alerts: list[AlertRule] = []
    recordings: list[dict[str, Any]] = []
    for group in data["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.append(
                    AlertRule(
                        group=str(group["name"]),
                        name=str(rule["alert"]),
                        expr=str(rule["expr"]),
                        for_=str(rule.get("for", "")),
                        labels=dict(rule.get("labels", {})),
                        annotations=dict(rule.get("annotations", {})),
                    )
                )
            else:
                recordings.append(dict(rule))
    return alerts, recordings
