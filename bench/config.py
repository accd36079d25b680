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
    sweep: tuple[tuple[int, float, float], ...]
    """(batch size, max wait, latency target) points; the first is the headline
    configuration (the worker's defaults: fixed size and wait, target 0), then the adaptive
    close and other fixed points."""
    sweep_messages: int
    """Messages pre-loaded at each further sweep point."""
    latency_s: float
    """Duration of the paced (half-load) latency run at the headline point."""
    sweep_latency_s: float
    load_fraction: float = 0.5
    profile_messages: int = 0
    """Messages scored under py-spy after the headline run (0: no profile)."""
    rounds: int = 3
    """Interleaved ceiling / messages / news saturation rounds at the headline point."""
    window_s: float = 10.0
    """Each round's saturation window lasts at least this long at the ceiling's speed."""
    scaling_messages: int = 0
    """Messages through two workers for the scaling row (0: none)."""
    shadow_messages: int = 0
    """Messages (and a quarter as many news items) through a worker with a copy of each
    production version in shadow, at the headline point (0: no shadow row)."""
    variants: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """(label, settings overrides) of further points at the headline's batching, measured
    like sweep points: what each default adds, in the same run."""


FULL = BenchConfig(
    mode="full",
    ceiling_batch_sizes=(1, 8, 32, 64),
    ceiling_texts=96,
    ceiling_repeats=3,
    naive_texts=160,
    saturation_messages=600,
    saturation_news=0,
    sweep=((64, 0.01, 0.0), (64, 0.01, 0.1), (32, 0.05, 0.0), (8, 0.01, 0.0)),
    sweep_messages=600,
    latency_s=30.0,
    sweep_latency_s=12.0,
    profile_messages=2000,
    rounds=3,
    window_s=10.0,
    scaling_messages=3000,
    shadow_messages=600,
    variants=(
        # the headline's latency run follows the rounds and the profile; this one, on a
        # fresh worker like every variant, is what the others compare with
        ("the defaults, fresh worker", ()),
        ("one model call at a time", (("inference_calls", "1"),)),
        ("no producer linger", (("producer_linger_s", "0"),)),
    ),
)

QUICK = BenchConfig(
    mode="quick",
    ceiling_batch_sizes=(1, 8),
    ceiling_texts=16,
    ceiling_repeats=2,
    naive_texts=8,
    saturation_messages=120,
    saturation_news=0,
    sweep=((8, 0.05, 0.0),),
    sweep_messages=0,
    latency_s=5.0,
    sweep_latency_s=0.0,
    profile_messages=60,
    rounds=1,
    window_s=0.2,
    scaling_messages=100,
    shadow_messages=40,
)
