-- 0001: the foundation schema. Append-only: later changes go in new numbered files.
-- Times are seconds from the start of the recording; speaker_role is 'therapist', 'client' or NULL.
CREATE TABLE pipeline_runs (
    run_id           VARCHAR PRIMARY KEY,
    pipeline_version VARCHAR NOT NULL,
    models           JSON,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    status           VARCHAR NOT NULL,   -- running | finished | failed
    command          VARCHAR
);

-- One row per recording a run looked at, with its end state.
CREATE TABLE run_items (
    run_id        VARCHAR NOT NULL,
    source_path   VARCHAR NOT NULL,
    session_id    VARCHAR,
    audio_sha256  VARCHAR,
    state         VARCHAR NOT NULL,      -- processed | skipped | refused | failed
    stage         VARCHAR,
    error_code    VARCHAR,
    message       VARCHAR,
    finished_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    session_id        VARCHAR PRIMARY KEY,
    client_id         VARCHAR NOT NULL,
    therapist_id      VARCHAR NOT NULL,
    recorded_on       DATE,
    audio_sha256      VARCHAR NOT NULL,
    duration_s        DOUBLE NOT NULL,
    language          VARCHAR,
    pipeline_version  VARCHAR NOT NULL,
    run_id            VARCHAR NOT NULL,
    processed_at      TIMESTAMPTZ NOT NULL,
    asr_backend       VARCHAR,
    asr_model         VARCHAR,
    diarization_model VARCHAR,
    num_speakers      INTEGER,
    role_method       VARCHAR,
    role_confidence   DOUBLE,
    role_evidence     VARCHAR,
    therapist_label   VARCHAR,
    client_label      VARCHAR,
    markers_version   VARCHAR,
    source_format     VARCHAR,
    source_sample_rate_hz INTEGER,
    source_channels   INTEGER
);

CREATE TABLE consents (
    session_id    VARCHAR PRIMARY KEY,
    client_id     VARCHAR NOT NULL,
    scope         VARCHAR NOT NULL,      -- clinical | research
    consented_on  DATE NOT NULL,
    consented_by  VARCHAR,
    source        VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL
);

CREATE TABLE turns (
    session_id    VARCHAR NOT NULL,
    turn_index    INTEGER NOT NULL,
    speaker_label VARCHAR NOT NULL,
    speaker_role  VARCHAR,
    start_s       DOUBLE NOT NULL,
    end_s         DOUBLE NOT NULL,
    text          VARCHAR NOT NULL,
    word_count    INTEGER NOT NULL,
    run_id        VARCHAR NOT NULL,
    PRIMARY KEY (session_id, turn_index)
);

CREATE TABLE words (
    session_id    VARCHAR NOT NULL,
    word_index    INTEGER NOT NULL,
    speaker_label VARCHAR,
    speaker_role  VARCHAR,
    start_s       DOUBLE NOT NULL,
    end_s         DOUBLE NOT NULL,
    text          VARCHAR NOT NULL,
    probability   DOUBLE,
    run_id        VARCHAR NOT NULL,
    PRIMARY KEY (session_id, word_index)
);

CREATE TABLE speaker_turns (
    session_id    VARCHAR NOT NULL,
    speaker_label VARCHAR NOT NULL,
    speaker_role  VARCHAR,
    start_s       DOUBLE NOT NULL,
    end_s         DOUBLE NOT NULL,
    run_id        VARCHAR NOT NULL
);

CREATE TABLE markers (
    session_id    VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    speaker_role  VARCHAR,
    start_s       DOUBLE,
    end_s         DOUBLE,
    value         DOUBLE,
    detail        VARCHAR,
    run_id        VARCHAR NOT NULL
);

CREATE TABLE indicators (
    session_id    VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    speaker_role  VARCHAR,
    value         DOUBLE,
    unit          VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL
);

-- Analysts' wide view: one row per session and role.
CREATE VIEW indicators_wide AS
SELECT session_id, speaker_role,
       max(value) FILTER (WHERE name = 'talk_time_share')    AS talk_time_share,
       max(value) FILTER (WHERE name = 'speaking_time')      AS speaking_time_s,
       max(value) FILTER (WHERE name = 'word_count')         AS word_count,
       max(value) FILTER (WHERE name = 'speech_rate')        AS speech_rate_wpm,
       max(value) FILTER (WHERE name = 'we_count')           AS we_count,
       max(value) FILTER (WHERE name = 'we_rate')            AS we_rate_per_100_words,
       max(value) FILTER (WHERE name = 'long_silence_count') AS long_silence_count,
       max(value) FILTER (WHERE name = 'long_silence_total') AS long_silence_total_s,
       max(value) FILTER (WHERE name = 'mean_switching_gap') AS mean_switching_gap_s
FROM indicators
GROUP BY session_id, speaker_role;
