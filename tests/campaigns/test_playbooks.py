"""Campaign definitions validated: ISO 8601 delays, channels, template keys, conditions, variants,
audiences and holdout shares; the default playbooks are valid themselves."""

from datetime import timedelta

import pytest

from churnsaver.backend.campaigns.playbooks import (
    DEFAULT_PLAYBOOKS,
    audience_from,
    case_kinds_from,
    holdout_share_from,
    parse_duration,
    variants_from,
)
from churnsaver.backend.cases.models import CaseKind
from churnsaver.backend.core.errors import InvalidInput


def test_iso_8601_durations_with_seconds_parse() -> None:
    assert parse_duration("PT0S") == timedelta(0)
    assert parse_duration("PT90S") == timedelta(seconds=90)
    assert parse_duration("P1D") == timedelta(days=1)
    assert parse_duration("p1dt12h30m") == timedelta(days=1, hours=12, minutes=30)
    assert parse_duration("P2W") == timedelta(weeks=2)
    assert parse_duration("PT1.5S") == timedelta(seconds=1.5)


@pytest.mark.parametrize("text", ["", "P", "PT", "1D", "P1M", "P1Y", "P-1D", "PT1H2", "P1DT", "P400D", "soon"])
def test_what_is_not_a_usable_duration_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(InvalidInput, match="delay"):
        parse_duration(text)


def test_variants_are_validated_step_by_step_with_the_step_named() -> None:
    good = [{"name": "a", "steps": [{"delay": "pt0s", "channel": "email", "template": "winback"}]}]
    [variant] = variants_from(good)
    assert variant.steps[0].delay == "PT0S" and variant.weight == 1
    bad_steps = [
        ({"delay": "tomorrow", "channel": "email", "template": "t"}, "step 1: delay"),
        ({"delay": "P1D", "channel": "fax", "template": "t"}, "channel 'fax'"),
        ({"delay": "P1D", "channel": "sms", "template": "Bad Key!"}, "template"),
        ({"delay": "P1D", "channel": "sms", "template": "t", "condition": "when_it_rains"}, "condition"),
        ({"delay": "P1D", "channel": "sms", "template": "t", "offer_id": "nope"}, "offer_id"),
    ]
    for step, reason in bad_steps:
        with pytest.raises(InvalidInput, match=reason):
            variants_from([{"name": "a", "steps": [step]}])
    with pytest.raises(InvalidInput, match="at least one variant"):
        variants_from([])
    with pytest.raises(InvalidInput, match="unique"):
        variants_from(good + good)
    with pytest.raises(InvalidInput, match="weight"):
        variants_from([{**good[0], "weight": 0}])
    with pytest.raises(InvalidInput, match="1 to 20 steps"):
        variants_from([{"name": "a", "steps": []}])


def test_audiences_kinds_and_holdout_shares_are_validated() -> None:
    assert audience_from({"countries": ["de"], "mrr_min": 100}) == {"countries": ["DE"], "mrr_min": 100}
    for bad in ({"colour": ["red"]}, {"tiers": "high"}, {"mrr_min": -1}, {"mrr_min": 10, "mrr_max": 5}):
        with pytest.raises(InvalidInput):
            audience_from(bad)
    assert case_kinds_from(["canceled", "canceled"]) == ["canceled"]
    with pytest.raises(InvalidInput):
        case_kinds_from(["refund"])
    with pytest.raises(InvalidInput):
        case_kinds_from([])
    assert holdout_share_from(0.1) == 0.1
    for bad in (-0.1, 0.95, True, "0.1"):
        with pytest.raises(InvalidInput):
            holdout_share_from(bad)


def test_every_case_kind_has_a_valid_default_playbook() -> None:
    kinds = {kind for playbook in DEFAULT_PLAYBOOKS for kind in playbook.case_kinds}
    assert kinds == set(CaseKind.__members__)
    for playbook in DEFAULT_PLAYBOOKS:
        assert variants_from([variant.stored() for variant in playbook.variants])
        assert audience_from(playbook.audience) == playbook.audience
    hard = next(playbook for playbook in DEFAULT_PLAYBOOKS if playbook.key == "payment_failed_hard")
    assert [(step.delay, step.channel) for step in hard.variants[0].steps][:3] == [
        ("PT0S", "email"),
        ("PT0S", "in_app"),
        ("P1D", "sms"),
    ]
