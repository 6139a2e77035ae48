-- 0003: privacy. The audit log, consent withdrawals and erasure records (which keep hashes and counts,
-- never content), the report files written per session (so an erasure can find them), per-session
-- content lemmas (for the client-history markers) and the research views (research-scope sessions only,
-- no text columns; ids are replaced by keyed pseudonyms when exported or queried by a researcher).

-- Append-only: who ran what on which sessions. No code path updates or deletes these rows.
CREATE TABLE audit_log (
    event_id     VARCHAR PRIMARY KEY,
    occurred_at  TIMESTAMPTZ NOT NULL,
    actor        VARCHAR NOT NULL,
    role         VARCHAR,                -- clinician | supervisor | researcher | admin | NULL (processing)
    action       VARCHAR NOT NULL,       -- process | summary | report | export | query | compare | withdraw | ...
    session_ids  VARCHAR[],
    run_id       VARCHAR,
    detail       VARCHAR                 -- never transcript text
);

-- Consent withdrawn: the session (or all of a client's sessions) was erased; the audio hash stays so a
-- re-submitted recording is refused.
CREATE TABLE consent_withdrawals (
    session_id    VARCHAR NOT NULL,
    client_id     VARCHAR NOT NULL,
    audio_sha256  VARCHAR,
    withdrawn_at  TIMESTAMPTZ NOT NULL,
    recorded_by   VARCHAR NOT NULL,
    erasure_id    VARCHAR NOT NULL
);

-- One row per erasure: what was removed, as counts, content hashes and file paths (no content).
CREATE TABLE erasures (
    erasure_id      VARCHAR PRIMARY KEY,
    erased_at       TIMESTAMPTZ NOT NULL,
    actor           VARCHAR NOT NULL,
    target_kind     VARCHAR NOT NULL,    -- session | client
    target_id       VARCHAR NOT NULL,
    session_ids     VARCHAR[] NOT NULL,
    rows_deleted    JSON NOT NULL,       -- {table: count}
    content_sha256  JSON NOT NULL,       -- {session_id: SHA-256 of the erased words, in order}
    files_removed   JSON NOT NULL,       -- [path, ...]
    prefect_runs_deleted INTEGER,
    run_id          VARCHAR NOT NULL
);

-- Files written for a session (summaries, reports), so erasure and retention can find them.
CREATE TABLE report_files (
    session_id  VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,        -- summary_md | report_html | report_pdf | audio
    run_id      VARCHAR NOT NULL
);

-- Each turn's text with direct identifiers replaced by typed placeholders ([PERSON], [PLACE], ...): the only
-- transcript text researchers can reach (research relation `turns`).
CREATE TABLE turns_deidentified (
    session_id  VARCHAR NOT NULL,
    turn_index  INTEGER NOT NULL,
    text        VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,
    PRIMARY KEY (session_id, turn_index)
);

-- Content lemmas per session and role (nouns, no proper nouns): input of new-material and dropped-topic
-- markers across a client's sessions.
CREATE TABLE session_lemmas (
    session_id    VARCHAR NOT NULL,
    speaker_role  VARCHAR NOT NULL,
    lemma         VARCHAR NOT NULL,
    count         INTEGER NOT NULL,
    run_id        VARCHAR NOT NULL
);

-- Research views: research-scope sessions only, no text. Raw ids are still here: researchers reach these
-- through `alliance export --role researcher` / `alliance query`, which replace ids with pseudonyms.
CREATE VIEW research_sessions AS
SELECT s.session_id, s.client_id, s.therapist_id, s.recorded_on, s.duration_s, s.language,
       s.pipeline_version, s.markers_version, s.num_speakers, s.role_confidence, s.run_id
FROM sessions s JOIN consents c USING (session_id)
WHERE c.scope = 'research';

CREATE VIEW research_indicators AS
SELECT i.session_id, s.client_id, s.therapist_id, s.recorded_on, i.name, i.speaker_role, i.value, i.unit, i.run_id
FROM indicators i JOIN research_sessions s USING (session_id);

CREATE VIEW research_markers AS
SELECT m.session_id, s.client_id, m.kind, m.speaker_role, m.start_s, m.end_s, m.value, m.run_id
FROM markers m JOIN research_sessions s USING (session_id);

-- Self-report of research-scope sessions, and client-level rows of clients with a research-scope session.
CREATE VIEW research_self_report_scores AS
SELECT r.administration_id, r.client_id, r.session_id, r.therapist_id, r.on_date, r.timepoint, r.instrument,
       r.scale, r.value, r.n_items, r.n_answered, r.prorated, r.kind, r.concern_below, r.reliable_change,
       r.import_id
FROM self_report_scores_long r
WHERE (r.session_id IS NOT NULL AND r.session_id IN (SELECT session_id FROM research_sessions))
   OR (r.session_id IS NULL AND r.client_id IN (SELECT client_id FROM research_sessions));
