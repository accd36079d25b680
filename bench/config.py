"""Sizes of a full and a quick (smoke-test) bench run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    """How much of everything one bench run measures."""

    mode: str
    ceiling_batch_sizes: tuple[int, ...]
    ceiling_texts: int
    """Texts scored per (task, precision, batch size) point and round."""
    ceiling_repeats: int
    """Interleaved rounds of the ceiling; the median is reported."""
    naive_texts: int
    """Texts scored one at a time per model by the naive recipe."""
    saturation_messages: int
    """Customer messages pre-loaded for the headline saturation run."""
    saturation_news: int
    sweep: tuple[tuple[int, float], ...]
    """(batch size, max wait) points; the first is the headline configuration."""
    sweep_messages: int
    """Messages pre-loaded at each further sweep point."""
    latency_s: float
    """Duration of the paced (half-load) latency run at the headline point."""
    sweep_latency_s: float
    load_fraction: float = 0.5
    profile_messages: int = 0
    """Messages scored under py-spy after the headline run (0: no profile)."""


FULL = BenchConfig(
    mode="full",
    ceiling_batch_sizes=(1, 8, 32, 64),
    ceiling_texts=96,
    ceiling_repeats=3,
    naive_texts=160,
    saturation_messages=1200,
    saturation_news=800,
    sweep=((32, 0.05), (8, 0.01), (8, 0.05), (32, 0.01), (64, 0.01), (64, 0.05)),
    sweep_messages=400,
    latency_s=30.0,
    sweep_latency_s=12.0,
    profile_messages=400,
)

QUICK = BenchConfig(
    mode="quick",
    ceiling_batch_sizes=(1, 8),
    ceiling_texts=16,
    ceiling_repeats=2,
    naive_texts=8,
    saturation_messages=120,
    saturation_news=60,
    sweep=((8, 0.05),),
    sweep_messages=0,
    latency_s=5.0,
    sweep_latency_s=0.0,
    profile_messages=60,
)
