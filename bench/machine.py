"""What the bench ran on: CPU, cores, load, providers and library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES = (
    "onnxruntime-gpu",
    "onnxruntime",
    "torch",
    "transformers",
    "tokenizers",
    "faust-streaming",
    "aiokafka",
    "kafka-python",
    "numpy",
    "pydantic",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def versions() -> dict[str, str]:
    out: dict[str, str] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def describe() -> dict[str, Any]:
    """The machine as the bench saw it at the start."""
    import onnxruntime as ort

    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "load_average_start": load_average(),
        "onnxruntime_available_providers": list(ort.get_available_providers()),
        "versions": versions(),
    }
