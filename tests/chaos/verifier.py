"""The chaos suite's verifier: every id sent against every output and dead letter seen.

Pure bookkeeping, no broker: the harness feeds it what the load generator acknowledged and
what the collectors read; :meth:`Ledger.verdict` says what was lost, duplicated, reordered
or answered inconsistently.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise


@dataclass(frozen=True)
class Output:
    """One output record as a collector read it, in topic order."""

    item_id: str
    key: bytes | None
    """The output's Kafka key: outputs that share a key share a partition, so their order
    is the order the worker produced them in."""
    decision: Hashable = None
    """What the worker decided for the item (queue, intent, label, ...): a redelivered
    item must get the same decision again."""
    seen_at: float = 0.0
    """Monotonic time the collector read it."""


@dataclass(frozen=True)
class Verdict:
    """What a chaos run did to the records it sent."""

    sent: int
    delivered: int
    """Sent ids with at least one output."""
    dead_lettered: int
    """Ids expected in a DLQ (poison) that reached it."""
    lost: tuple[str, ...]
    """Sent ids with no output (or poison ids with no dead letter)."""
    duplicates: int
    """Outputs beyond the first for an id: the price of at-least-once."""
    inconsistent: tuple[str, ...]
    """Ids whose repeated outputs carry different decisions."""
    out_of_order: int
    """Keys whose outputs (first occurrences) came in another order than their inputs; only
    outputs keyed like their input count (the order Kafka keeps is per partition)."""
    unknown: int
    """Outputs for ids this run never sent (another run's, or a bug)."""

    def line(self) -> str:
        return (
            f"sent {self.sent}, delivered {self.delivered}, dead letters {self.dead_lettered}, "
            f"lost {len(self.lost)}, duplicates {self.duplicates}, "
            f"inconsistent {len(self.inconsistent)}, out of order {self.out_of_order}, "
            f"unknown {self.unknown}"
        )


@dataclass
class Ledger:
    """Ids in the order they were acknowledged by the broker, per input key."""

    order: dict[str, tuple[bytes | None, int]] = field(default_factory=dict)
    """id -> (key it was sent with, position among that key's ids)."""
    per_key: Counter[bytes | None] = field(default_factory=Counter)
    poison: set[str] = field(default_factory=set)

    def sent(self, item_id: str, key: bytes | None) -> None:
        """Note an id the broker acknowledged (the first acknowledgement counts)."""
        if item_id in self.order:
            return
        self.order[item_id] = (key, self.per_key[key])
        self.per_key[key] += 1

    def sent_poison(self, item_id: str) -> None:
        """Note a record that must reach a DLQ instead of an output."""
        self.poison.add(item_id)

    def verdict(self, outputs: Iterable[Output], dead_letters: Iterable[str] = ()) -> Verdict:
        counts: Counter[str] = Counter()
        decisions: dict[str, set[Hashable]] = defaultdict(set)
        positions: dict[bytes | None, list[int]] = defaultdict(list)
        unknown = 0
        for out in outputs:
            if out.item_id not in self.order:
                unknown += 1
                continue
            counts[out.item_id] += 1
            decisions[out.item_id].add(out.decision)
            key, position = self.order[out.item_id]
            if counts[out.item_id] == 1 and out.key == key:  # order is kept per input key
                positions[out.key].append(position)
        letters = set(dead_letters)
        lost = sorted(i for i in self.order if i not in counts)
        lost += sorted(self.poison - letters)
        return Verdict(
            sent=len(self.order),
            delivered=len(counts),
            dead_lettered=len(self.poison & letters),
            lost=tuple(lost),
            duplicates=sum(counts.values()) - len(counts),
            inconsistent=tuple(sorted(i for i, d in decisions.items() if len(d) > 1)),
            out_of_order=sum(
                1 for seq in positions.values() if any(b < a for a, b in pairwise(seq))
            ),
            unknown=unknown,
        )


def resume_times(kills: Iterable[float], first_seen: Iterable[float]) -> list[float]:
    """Seconds from each kill to the first output of an id not seen before it.

    ``first_seen``: when each id's first output was read. A kill after which no new id was
    seen is left out (the run ended).
    """
    seen = sorted(first_seen)
    times = []
    for kill in sorted(kills):
        later = next((t for t in seen if t > kill), None)
        if later is not None:
            times.append(later - kill)
    return times
