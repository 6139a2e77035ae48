-- 0004: signals that can be trusted.
--
-- session_quality: one row per session with the quality measures and the flags they raise
-- (pipeline.analysis.quality); shown at the top of the summary and the report.
-- indicator_definitions: every indicator's unit, definition and evidence grade, per markers version
-- (pipeline/analysis/indicator_definitions.json); docs/data_dictionary.md is checked against it.
CREATE TABLE session_quality (
    session_id                    VARCHAR NOT NULL,
    speech_s                      DOUBLE,
    speech_share                  DOUBLE,
    snr_db                        DOUBLE,
    overlap_share                 DOUBLE,
    mean_word_probability         DOUBLE,
    asr_segments                  INTEGER,
    asr_segments_dropped          INTEGER,
    words_dropped_outside_speech  INTEGER,
    word_attribution_overlap      DOUBLE,
    role_confidence               DOUBLE,
    language                      VARCHAR,
    language_probability          DOUBLE,
    flags                         VARCHAR,   -- JSON list of {code, message, distrust}
    run_id                        VARCHAR NOT NULL
);

CREATE TABLE indicator_definitions (
    name             VARCHAR NOT NULL,
    speaker_roles    VARCHAR,                -- e.g. "therapist,client" or "session"
    unit             VARCHAR,
    definition       VARCHAR NOT NULL,
    markers_version  VARCHAR NOT NULL,
    grade            VARCHAR NOT NULL,       -- validated | exploratory | contradicted
    evidence         VARCHAR,
    source           VARCHAR,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (name, markers_version)
);
