"""bench/bad_input.py: every hostile case ends as expected through the real command, without a traceback."""

from __future__ import annotations

from bench import bad_input


def test_every_bad_input_case_ends_as_expected(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    cases = bad_input.run(tmp_path / "work", batch=False)
    assert len(cases) >= 35
    wrong = [(c.name, c.state, c.code, c.expected, c.detail) for c in cases if not c.ok]
    assert wrong == []
    assert {c.klass for c in cases} == {"audio", "ids", "consent", "manifest", "cli", "csv", "server", "erasure",
                                        "database"}
    assert max(c.seconds for c in cases if c.klass != "manifest") < 30
    table = bad_input.markdown(cases)
    assert table.count("\n") == len(cases) + 1 and "(!)" not in table
