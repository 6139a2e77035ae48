from __future__ import annotations

import json

import pytest
from conftest import write_consent

from pipeline.errors import ConsentError
from pipeline.privacy.consent import check_matches, parse_consent, read_sidecar

GOOD = {"session_id": "s1", "client_id": "c1", "scope": "clinical", "consented_on": "2026-01-01",
        "consented_by": ["client"]}


def test_sidecar_read(tone_wav):
    write_consent(tone_wav)
    c = read_sidecar(tone_wav)
    assert c.session_id == "s1" and c.scope == "research" and c.consented_by == ("client", "therapist")


def test_no_sidecar_is_refused_with_the_expected_name(tone_wav):
    with pytest.raises(ConsentError, match="tone.wav.consent.json"):
        read_sidecar(tone_wav)


@pytest.mark.parametrize("change, match", [
    ({"scope": "marketing"}, "marketing"),
    ({"consented_on": "yesterday"}, "yesterday"),
    ({"client_id": ""}, "client_id"),
    ({"withdrawn_on": "2026-02-01"}, "withdrawn"),
])
def test_invalid_records(change, match):
    with pytest.raises(ConsentError, match=match):
        parse_consent({**GOOD, **change}, source="test")


def test_broken_json(tone_wav):
    tone_wav.with_name(tone_wav.name + ".consent.json").write_text("{not json")
    with pytest.raises(ConsentError, match="JSON"):
        read_sidecar(tone_wav)


def test_consent_for_another_session_or_client():
    c = parse_consent(GOOD, source="test")
    check_matches(c, session_id="s1", client_id="c1")
    with pytest.raises(ConsentError, match="'s2'"):
        check_matches(c, session_id="s2", client_id="c1")
    with pytest.raises(ConsentError, match="'c9'"):
        check_matches(c, session_id="s1", client_id="c9")


def test_list_not_object(tone_wav):
    tone_wav.with_name(tone_wav.name + ".consent.json").write_text(json.dumps([GOOD]))
    with pytest.raises(ConsentError, match="object"):
        read_sidecar(tone_wav)
