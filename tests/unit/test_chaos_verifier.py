"""The chaos verifier must see every kind of damage it reports (else a chaos run that
passes proves nothing)."""

from __future__ import annotations

from tests.chaos.verifier import Ledger, Output, resume_times


def _ledger(*sent: tuple[str, bytes]) -> Ledger:
    ledger = Ledger()
    for item_id, key in sent:
        ledger.sent(item_id, key)
    return ledger


def test_a_clean_run_reports_nothing_wrong() -> None:
    ledger = _ledger(("a1", b"a"), ("b1", b"b"), ("a2", b"a"))
    verdict = ledger.verdict(
        [Output("a1", b"a", "q1"), Output("b1", b"b", "q2"), Output("a2", b"a", "q1")]
    )
    assert verdict.sent == verdict.delivered == 3
    assert not verdict.lost and verdict.duplicates == 0 and verdict.out_of_order == 0
    assert not verdict.inconsistent and verdict.unknown == 0


def test_an_id_without_output_is_lost_and_a_repeat_is_a_duplicate() -> None:
    ledger = _ledger(("a1", b"a"), ("a2", b"a"), ("a3", b"a"))
    verdict = ledger.verdict([Output("a1", b"a"), Output("a1", b"a"), Output("a3", b"a")])
    assert verdict.lost == ("a2",)
    assert verdict.duplicates == 1
    assert verdict.delivered == 2


def test_a_redelivery_with_another_decision_is_inconsistent() -> None:
    ledger = _ledger(("a1", b"a"))
    verdict = ledger.verdict([Output("a1", b"a", "cards"), Output("a1", b"a", "fraud")])
    assert verdict.inconsistent == ("a1",)


def test_outputs_of_one_key_in_another_order_than_sent_are_out_of_order() -> None:
    ledger = _ledger(("a1", b"a"), ("a2", b"a"), ("b1", b"b"), ("b2", b"b"))
    # a duplicate of an earlier id after a later one is redelivery, not reordering
    verdict = ledger.verdict(
        [
            Output("a1", b"a"),
            Output("a2", b"a"),
            Output("a1", b"a"),
            Output("b2", b"b"),
            Output("b1", b"b"),
        ]
    )
    assert verdict.out_of_order == 1
    assert verdict.duplicates == 1


def test_poison_must_reach_a_dead_letter_and_outputs_of_unsent_ids_are_counted() -> None:
    ledger = _ledger(("a1", b"a"))
    ledger.sent_poison("p-news")
    ledger.sent_poison("p-feedback")
    verdict = ledger.verdict([Output("a1", b"a"), Output("zz", b"z")], ["p-news"])
    assert verdict.dead_lettered == 1
    assert verdict.lost == ("p-feedback",)
    assert verdict.unknown == 1


def test_a_second_acknowledgement_of_an_id_keeps_its_first_position() -> None:
    ledger = _ledger(("a1", b"a"), ("a2", b"a"), ("a1", b"a"))
    verdict = ledger.verdict([Output("a1", b"a"), Output("a2", b"a")])
    assert verdict.sent == 2 and verdict.out_of_order == 0


def test_resume_time_is_from_each_kill_to_the_next_new_output() -> None:
    assert resume_times([10.0, 20.0, 50.0], [1.0, 12.5, 13.0, 27.0]) == [2.5, 7.0]
