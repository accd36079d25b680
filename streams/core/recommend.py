"""Rank next-best actions for a customer message from an operator's action catalog."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from streams.core.records import RankedAction, config_problem, load_toml, parse_toml

ANY_INTENT = "*"
"""Key of an action's weight for every intent it does not list."""

Weight = Annotated[float, Field(ge=0.0, le=10.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Strict):
    """One action the agent handling a message can take, and the intents it suits."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    intents: Annotated[dict[str, Weight], Field(min_length=1)]
    escalation: bool = False

    def weight(self, intent: str) -> float:
        """How well this action suits ``intent`` (0 when it does not)."""
        return self.intents.get(intent, self.intents.get(ANY_INTENT, 0.0))


class EscalationRule(_Strict):
    """Repeat contacts push escalation actions up."""

    min_repeat_contacts: Annotated[int, Field(ge=2)] = 2
    boost: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5


class ActionCatalog(_Strict):
    """Every action and the escalation rule, as the operator wrote them in actions.toml."""

    escalation: EscalationRule = EscalationRule()
    actions: Annotated[tuple[Action, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for index, action in enumerate(self.actions):
            if action.id in seen:
                raise config_problem(f"actions.{index}.id", f"{action.id!r} is used twice")
            seen.add(action.id)
        return self

    @classmethod
    def load(cls, path: str | Path) -> ActionCatalog:
        """Read and check an action catalog; ``ConfigFileError`` names the file and key."""
        return load_toml(path, cls)

    @classmethod
    def parse(cls, text: str, *, source: str = "<string>") -> ActionCatalog:
        """Like ``load``, from TOML text."""
        return parse_toml(text, cls, source=source)

    def actions_for(self, intent: str) -> list[Action]:
        """Actions with a positive weight for ``intent`` (catch-all actions included)."""
        return [a for a in self.actions if a.weight(intent) > 0]

    @cached_property
    def _suited(
        self,
    ) -> tuple[dict[str, tuple[tuple[int, float], ...]], tuple[tuple[int, float], ...]]:
        """(intent → (action index, weight) of the actions suiting it, in catalog order;
        the same for an intent no action lists: the catch-all actions)."""
        listed = {intent for action in self.actions for intent in action.intents} - {ANY_INTENT}

        def suiting(intent: str) -> tuple[tuple[int, float], ...]:
            weights = ((i, a.weight(intent)) for i, a in enumerate(self.actions))
            return tuple((i, w) for i, w in weights if w > 0)

        return {intent: suiting(intent) for intent in listed}, suiting(ANY_INTENT)

    def scores(self, intent_probs: Mapping[str, float]) -> list[float]:
        """Each action's sum over intents of P(intent) x weight, in catalog order.

        Only the actions that suit an intent are visited (a message's few top intents
        against a catalog of dozens); each action's terms are added in the order of
        ``intent_probs``, so the sums are exactly those of adding every term in turn."""
        by_intent, catch_all = self._suited
        scores = [0.0] * len(self.actions)
        for intent, p in intent_probs.items():
            if p > 0:
                for index, weight in by_intent.get(intent, catch_all):
                    scores[index] += p * weight
        return scores


def recommend(
    intent_probs: Mapping[str, float],
    catalog: ActionCatalog,
    *,
    repeat_contacts: int = 1,
    k: int = 3,
) -> list[RankedAction]:
    """The ``k`` best actions: score = sum of P(intent) x weight, best first.

    ``repeat_contacts`` counts the customer's contacts about the top intent within the
    repeat window, this one included (``RoutingDecision.repeat_contacts``); from
    ``catalog.escalation.min_repeat_contacts`` on, escalation actions with a non-zero
    score get ``boost`` added. Actions scoring zero are never suggested; ties go to the
    smaller action id.
    """
    repeat = repeat_contacts >= catalog.escalation.min_repeat_contacts
    ranked: list[RankedAction] = []
    for action, score in zip(catalog.actions, catalog.scores(intent_probs), strict=True):
        if score <= 0:
            continue
        if repeat and action.escalation:
            score += catalog.escalation.boost
        ranked.append(RankedAction(action_id=action.id, title=action.title, score=score))
    ranked.sort(key=lambda a: (-a.score, a.action_id))
    return ranked[: max(k, 0)]
