"""Drift profiles of a model version: what its inputs and outputs looked like on known data.

A :class:`DriftReference` holds, for one task and version, histograms of four features
measured on the data the version was validated on (the held-out split, plus the recent
feedback slice for a fine-tuned version):

- ``label``: the predicted label (one bin per label);
- ``confidence``: the probability of the predicted label;
- ``length``: words per text;
- ``oov``: the share of a text's words missing from the training vocabulary.

Bins of the numeric features are the reference's deciles, so each holds about a tenth
of the reference. The vocabulary is kept as 32-bit hashes of the words seen at least
twice in the training texts (no text is stored). :func:`psi` compares two histograms
(population stability index; 0.1 is commonly read as a moderate shift, 0.25 as major).

Pure: no inference, no I/O beyond (de)serialising plain JSON-able dicts.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.exceptions import ModelsError
from models.prediction import Prediction

FEATURES = ("label", "confidence", "length", "oov")
NUMERIC = ("confidence", "length", "oov")
REFERENCE_FORMAT = 1
MAX_CHARS = 2000
"""Characters of a text the input features read (a huge record costs no more than this)."""
MIN_WORD_COUNT = 2
SMOOTHING = 0.5
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\$?\d+(?:[.,]\d+)*%?|[$#@]\w+", re.UNICODE)


class DriftReferenceError(ModelsError):
    """A drift reference that cannot be read or does not fit the model version."""


def words(text: str) -> list[str]:
    """Lower-cased words of (the first ``MAX_CHARS`` characters of) ``text``."""
    return _WORD.findall(text[:MAX_CHARS].lower())


@functools.lru_cache(maxsize=1 << 16)
def word_hash(word: str) -> int:
    """A stable 32-bit hash (CRC-32) of a word: the vocabulary never stores the words."""
    return zlib.crc32(word.encode())


def vocabulary(texts: Iterable[str], min_count: int = MIN_WORD_COUNT) -> frozenset[int]:
    """Hashes of the words that occur at least ``min_count`` times in ``texts``."""
    counts = Counter(word for text in texts for word in words(text))
    return frozenset(word_hash(w) for w, n in counts.items() if n >= min_count)


def text_features(text: str, vocab: frozenset[int]) -> tuple[float, float]:
    """``(length in words, out-of-vocabulary share)`` of one text (0 words: OOV share 0)."""
    found = words(text)
    if not found:
        return 0.0, 0.0
    missing = sum(1 for w in found if word_hash(w) not in vocab)
    return float(len(found)), missing / len(found)


def decile_edges(values: Sequence[float]) -> list[float]:
    """Inner bin edges at the deciles of ``values`` (duplicates dropped; at least one)."""
    ordered = sorted(values)
    if not ordered:
        return []
    edges: list[float] = []
    for k in range(1, 10):
        edge = ordered[min(len(ordered) - 1, (k * len(ordered)) // 10)]
        if not edges or edge > edges[-1]:
            edges.append(float(edge))
    if edges and edges[0] <= ordered[0]:  # the lowest edge would leave the first bin empty
        edges = edges[1:]
    if not edges:  # one value throughout: anything above it is a bin of its own
        edges = [math.nextafter(float(ordered[-1]), math.inf)]
    return edges


def bin_of(edges: Sequence[float], value: float) -> int:
    """Index of the bin of ``value``: bins are ``[edge_i, edge_i+1)`` with open ends."""
    return bisect.bisect_right(edges, value)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two histograms over the same bins.

    ``sum((a - e) * ln(a / e))`` over bin shares, with ``SMOOTHING`` added to every count
    so an empty bin gives a finite value. 0 when the shares are equal.
    """
    if len(expected) != len(actual):
        raise ValueError(f"histograms differ in bins: {len(expected)} vs {len(actual)}")
    k = len(expected)
    if k == 0:
        return 0.0
    e_total = sum(expected) + SMOOTHING * k
    a_total = sum(actual) + SMOOTHING * k
    value = 0.0
    for e_count, a_count in zip(expected, actual, strict=True):
        e = (e_count + SMOOTHING) / e_total
        a = (a_count + SMOOTHING) / a_total
        value += (a - e) * math.log(a / e)
    return value


@dataclass(frozen=True)
class DriftReference:
    """Feature histograms of one version on its validation data (see the module doc)."""

    task: str
    version: str
    labels: tuple[str, ...]
    n: int
    edges: Mapping[str, tuple[float, ...]]
    counts: Mapping[str, tuple[int, ...]]
    vocabulary: frozenset[int]
    source: str = ""
    control: Mapping[str, Any] | None = None
    """PSI of a disjoint control sample of the same data: the noise floor without drift."""

    def bins(self, feature: str) -> int:
        return len(self.labels) if feature == "label" else len(self.edges[feature]) + 1

    def item_bins(self, text: str, prediction: Prediction) -> tuple[int, int, int, int]:
        """The bin of every feature for one scored text, in ``FEATURES`` order."""
        try:
            label = self.labels.index(prediction.label)
        except ValueError as exc:
            raise DriftReferenceError(
                f"drift reference of {self.task}/{self.version} has no label "
                f"{prediction.label!r} (labels: {', '.join(self.labels)})"
            ) from exc
        length, oov = text_features(text, self.vocabulary)
        return (
            label,
            bin_of(self.edges["confidence"], prediction.confidence),
            bin_of(self.edges["length"], length),
            bin_of(self.edges["oov"], oov),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": REFERENCE_FORMAT,
            "task": self.task,
            "version": self.version,
            "labels": list(self.labels),
            "n": self.n,
            "source": self.source,
            "edges": {f: list(self.edges[f]) for f in NUMERIC},
            "counts": {f: list(self.counts[f]) for f in FEATURES},
            "control": dict(self.control) if self.control is not None else None,
            "vocabulary": sorted(self.vocabulary),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> DriftReference:
        """Rebuild from :meth:`as_dict`; raises :class:`DriftReferenceError` naming ``where``."""
        try:
            if data.get("format") != REFERENCE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {REFERENCE_FORMAT}")
            labels = tuple(str(x) for x in data["labels"])
            edges = {f: tuple(float(x) for x in data["edges"][f]) for f in NUMERIC}
            counts = {f: tuple(int(x) for x in data["counts"][f]) for f in FEATURES}
            reference = cls(
                task=str(data["task"]),
                version=str(data["version"]),
                labels=labels,
                n=int(data["n"]),
                edges=edges,
                counts=counts,
                vocabulary=frozenset(int(x) for x in data["vocabulary"]),
                source=str(data.get("source", "")),
                control=dict(data["control"]) if data.get("control") else None,
            )
            for feature in FEATURES:
                if len(counts[feature]) != reference.bins(feature):
                    raise ValueError(
                        f"{feature} has {len(counts[feature])} counts for "
                        f"{reference.bins(feature)} bins"
                    )
        except (KeyError, TypeError, ValueError) as exc:
            raise DriftReferenceError(f"drift reference {where} is not valid: {exc}") from exc
        return reference


def compare(
    reference: DriftReference, texts: Sequence[str], predictions: Sequence[Prediction]
) -> dict[str, float]:
    """PSI per feature of a whole sample against ``reference`` (no window)."""
    counts = [[0] * reference.bins(f) for f in FEATURES]
    for text, prediction in zip(texts, predictions, strict=True):
        for hist, b in zip(counts, reference.item_bins(text, prediction), strict=True):
            hist[b] += 1
    return {f: psi(reference.counts[f], hist) for f, hist in zip(FEATURES, counts, strict=True)}


def build_reference(
    task: str,
    version: str,
    texts: Sequence[str],
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    vocabulary_texts: Iterable[str],
    *,
    source: str = "",
) -> DriftReference:
    """The reference of ``version`` from its predictions on validation ``texts``."""
    if len(texts) != len(predictions):
        raise ValueError(f"{len(texts)} texts but {len(predictions)} predictions")
    if not texts:
        raise ValueError("a drift reference needs at least one scored text")
    vocab = vocabulary(vocabulary_texts)
    features = [text_features(t, vocab) for t in texts]
    values = {
        "confidence": [p.confidence for p in predictions],
        "length": [f[0] for f in features],
        "oov": [f[1] for f in features],
    }
    edges = {f: tuple(decile_edges(values[f])) for f in NUMERIC}
    counts: dict[str, tuple[int, ...]] = {}
    index = {name: i for i, name in enumerate(labels)}
    label_counts = [0] * len(labels)
    for p in predictions:
        label_counts[index[p.label]] += 1
    counts["label"] = tuple(label_counts)
    for f in NUMERIC:
        hist = [0] * (len(edges[f]) + 1)
        for v in values[f]:
            hist[bin_of(edges[f], v)] += 1
        counts[f] = tuple(hist)
    return DriftReference(
        task=task,
        version=version,
        labels=tuple(labels),
        n=len(texts),
        edges=edges,
        counts=counts,
        vocabulary=vocab,
        source=source,
    )
