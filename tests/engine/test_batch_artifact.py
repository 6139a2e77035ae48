"""The batch outcome as a Prefect table artifact: end states, reasons and counts, with opaque handles only."""

from __future__ import annotations

import json
import shutil

from conftest import write_consent

from pipeline.engine.manifest import load_batch

HEADER = "audio,session_id,client_id,therapist_id,recorded_on,consent_scope,consented_on,consented_by\n"


def test_batch_writes_an_outcome_table_without_ids_paths_or_text(prefect_harness, fakes, recording, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from flows.batch_flow import ARTIFACT_KEY, run_batch

    write_consent(recording, session_id="secret-session-1", client_id="secret-client")
    shutil.copy(recording, tmp_path / "no consent.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + f"{recording.name},secret-session-1,secret-client,secret-therapist,,,\n"
                        "no consent.wav,secret-session-2,secret-client,secret-therapist,,,\n"
                        ",secret-session-3,secret-client,secret-therapist,,,\n")
    report = run_batch(str(manifest), workers=1, db_path=str(tmp_path / "a.duckdb"),
                       reports_dir=str(tmp_path / "reports"))
    assert sorted(o.state for o in report.outcomes) == ["failed", "processed", "refused"]

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY])),
                                            sort=ArtifactSort.CREATED_DESC, limit=1)
    assert artifact.type == "table"
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    by_state = {r["state"]: r for r in rows[:-1]}
    handles = {r["handle"] for r in rows[:-1]}  # random (issue 24): not a hash a guessed id could reproduce
    assert set(by_state) == {"processed", "refused", "failed"} and len(handles) == 3
    assert all(len(h) == 12 and int(h, 16) >= 0 for h in handles) and not handles & {i.handle for i in load_batch(
        manifest)}
    assert by_state["failed"]["stage"] == "manifest" and by_state["failed"]["error_code"] == "manifest"
    assert by_state["refused"]["error_code"] == "no_consent"
    assert rows[-1] == {"handle": "counts", "state": "1 failed, 1 refused, 0 skipped, 1 processed", "stage": "",
                        "error_code": "3 recordings"}
    stored = json.dumps(rows) + (artifact.description or "")
    for secret in ("secret", "session one", "no consent", str(tmp_path), "sister"):
        assert secret not in stored, secret
