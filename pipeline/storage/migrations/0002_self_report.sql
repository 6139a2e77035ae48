-- 0002: client self-report (raw items, scores, import reports) and the indicator comparison.
-- Every row carries the import_id or comparison_id that wrote it (its "run id").

-- One row per `alliance import-self-report` (also dry runs are not written: only real imports).
CREATE TABLE self_report_imports (
    import_id        VARCHAR PRIMARY KEY,
    source_path      VARCHAR NOT NULL,
    source_sha256    VARCHAR NOT NULL,
    file_format      VARCHAR NOT NULL,   -- wide | long
    instruments      VARCHAR NOT NULL,   -- comma-separated instrument keys
    lines_read       INTEGER NOT NULL,
    values_read      INTEGER NOT NULL,
    values_accepted  INTEGER NOT NULL,
    values_rejected  INTEGER NOT NULL,
    administrations  INTEGER NOT NULL,
    pipeline_version VARCHAR NOT NULL,
    imported_at      TIMESTAMPTZ NOT NULL,
    command          VARCHAR
);

-- The instrument definition each import scored with (items, range, subscales, keys, prorating).
CREATE TABLE self_report_instruments (
    import_id        VARCHAR NOT NULL,
    instrument       VARCHAR NOT NULL,
    name             VARCHAR NOT NULL,
    source           VARCHAR,
    kind             VARCHAR NOT NULL,   -- alliance | outcome | other
    scoring          VARCHAR NOT NULL,   -- sum | mean
    concern_below    DOUBLE,
    reliable_change  DOUBLE,
    definition       JSON NOT NULL,
    PRIMARY KEY (import_id, instrument)
);

-- Row-level problems found by an import: the row (or value) was not stored.
CREATE TABLE self_report_import_errors (
    import_id   VARCHAR NOT NULL,
    line        INTEGER NOT NULL,        -- 1 = header; data from 2
    field       VARCHAR,
    value       VARCHAR,
    code        VARCHAR NOT NULL,
    message     VARCHAR NOT NULL
);

-- One completed questionnaire: an instrument filled in by a client at a session / date / timepoint.
CREATE TABLE self_report_administrations (
    administration_id VARCHAR PRIMARY KEY,
    import_id         VARCHAR NOT NULL,
    instrument        VARCHAR NOT NULL,
    client_id         VARCHAR NOT NULL,
    session_id        VARCHAR,           -- NULL: client-level (no session that day)
    administered_on   DATE,
    timepoint         VARCHAR,           -- free label such as pre | post | follow_up
    n_items           INTEGER NOT NULL,
    n_answered        INTEGER NOT NULL,
    status            VARCHAR NOT NULL,  -- scored | partly_scored | not_scored
    note              VARCHAR
);

-- Raw item values as given, and the item score (reverse-keyed; NULL for a missing code or blank).
CREATE TABLE self_report_items (
    administration_id VARCHAR NOT NULL,
    import_id         VARCHAR NOT NULL,
    instrument        VARCHAR NOT NULL,
    item              VARCHAR NOT NULL,
    raw_value         DOUBLE,
    item_score        DOUBLE,
    missing_code      BOOLEAN NOT NULL,
    source_line       INTEGER NOT NULL,
    PRIMARY KEY (administration_id, item)
);

-- Scale scores (total and subscales); value NULL when the prorating rule does not allow a score.
CREATE TABLE self_report_scores (
    administration_id VARCHAR NOT NULL,
    import_id         VARCHAR NOT NULL,
    instrument        VARCHAR NOT NULL,
    scale             VARCHAR NOT NULL,
    value             DOUBLE,
    n_items           INTEGER NOT NULL,
    n_answered        INTEGER NOT NULL,
    prorated          BOOLEAN NOT NULL,
    note              VARCHAR,
    PRIMARY KEY (administration_id, scale)
);

-- One row per `alliance compare`.
CREATE TABLE comparison_runs (
    comparison_id    VARCHAR PRIMARY KEY,
    created_at       TIMESTAMPTZ NOT NULL,
    options          JSON NOT NULL,
    n_tests          INTEGER NOT NULL,
    correction       VARCHAR NOT NULL,
    pipeline_version VARCHAR NOT NULL,
    command          VARCHAR
);

-- Indicator x measure x level correlations with 95 % CIs (Fisher z) and BH-adjusted q values.
CREATE TABLE comparison_results (
    comparison_id    VARCHAR NOT NULL,
    indicator        VARCHAR NOT NULL,
    speaker_role     VARCHAR,
    instrument       VARCHAR NOT NULL,
    scale            VARCHAR NOT NULL,
    timepoint        VARCHAR,
    level            VARCHAR NOT NULL,   -- between (client means) | within (client-centred)
    n                INTEGER NOT NULL,   -- observations (clients for between, sessions for within)
    n_clients        INTEGER NOT NULL,
    spearman_rho     DOUBLE,
    spearman_ci_low  DOUBLE,
    spearman_ci_high DOUBLE,
    spearman_p       DOUBLE,
    spearman_q       DOUBLE,
    pearson_r        DOUBLE,
    pearson_ci_low   DOUBLE,
    pearson_ci_high  DOUBLE,
    pearson_p        DOUBLE,
    pearson_q        DOUBLE,
    note             VARCHAR
);

-- Sessions where process signals and the client's alliance rating disagree.
CREATE TABLE discrepancy_flags (
    comparison_id  VARCHAR NOT NULL,
    session_id     VARCHAR NOT NULL,
    client_id      VARCHAR NOT NULL,
    instrument     VARCHAR NOT NULL,
    scale          VARCHAR NOT NULL,
    timepoint      VARCHAR,
    score          DOUBLE NOT NULL,
    rating         VARCHAR NOT NULL,     -- high | low
    flag           VARCHAR NOT NULL,     -- strain_but_rated_high | rated_low_without_strain
    strain_signals VARCHAR,              -- the indicators beyond their strain threshold
    detail         VARCHAR
);

-- Per-client series across occasions with the client's own baseline and reliable-change markers.
CREATE TABLE client_trajectories (
    comparison_id        VARCHAR NOT NULL,
    client_id            VARCHAR NOT NULL,
    series               VARCHAR NOT NULL, -- indicator | self_report
    name                 VARCHAR NOT NULL, -- indicator name or instrument.scale
    speaker_role         VARCHAR,
    timepoint            VARCHAR,
    occasion             INTEGER NOT NULL, -- 1 = the client's first session / administration
    session_id           VARCHAR,
    on_date              DATE,
    value                DOUBLE,
    baseline             DOUBLE,
    change_from_baseline DOUBLE,
    reliable_change      VARCHAR          -- improved | deteriorated | no_reliable_change | NULL (no criterion)
);

-- Scores with who, when and which session: one row per administration and scale.
CREATE VIEW self_report_scores_long AS
SELECT a.administration_id, a.client_id, a.session_id, s.therapist_id,
       coalesce(a.administered_on, s.recorded_on) AS on_date, a.timepoint, a.instrument, c.scale, c.value,
       c.n_items, c.n_answered, c.prorated, c.note, i.kind, i.concern_below, i.reliable_change, a.import_id
FROM self_report_administrations a
JOIN self_report_scores c USING (administration_id)
JOIN self_report_instruments i ON i.import_id = a.import_id AND i.instrument = a.instrument
LEFT JOIN sessions s ON s.session_id = a.session_id;

-- Indicators beside self-report, per session (long x long: one row per indicator x scale score).
CREATE VIEW session_indicators_self_report AS
SELECT s.session_id, s.client_id, s.therapist_id, s.recorded_on, ind.name AS indicator, ind.speaker_role,
       ind.value AS indicator_value, ind.unit, r.instrument, r.scale, r.timepoint, r.value AS score,
       r.prorated, ind.run_id, r.import_id
FROM indicators ind
JOIN sessions s USING (session_id)
JOIN self_report_scores_long r ON r.session_id = ind.session_id;

-- Per client over time: every indicator and every score on the client's occasions, in order.
CREATE VIEW client_series AS
WITH occ AS (
    SELECT session_id, client_id, recorded_on,
           row_number() OVER (PARTITION BY client_id ORDER BY recorded_on NULLS LAST, session_id) AS session_number
    FROM sessions
)
SELECT o.client_id, o.session_number, o.session_id, o.recorded_on AS on_date, 'indicator' AS series,
       ind.name, ind.speaker_role, NULL::VARCHAR AS timepoint, ind.value
FROM indicators ind JOIN occ o USING (session_id)
UNION ALL
SELECT r.client_id, o.session_number, r.session_id, r.on_date, 'self_report' AS series,
       r.instrument || '.' || r.scale AS name, NULL::VARCHAR AS speaker_role, r.timepoint, r.value
FROM self_report_scores_long r LEFT JOIN occ o USING (session_id);
