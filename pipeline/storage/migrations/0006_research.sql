-- 0006: research comparison that cannot mislead.
--
-- indicators_wide: was a view of 9 indicators per session x role; now a table with one row per session and
-- one DOUBLE column per indicator and role (`talk_time_share_therapist`, `talk_time_share_client`; session-level
-- indicators keep their bare name, e.g. `long_silence_count`), plus the run_id that wrote the indicators. It is
-- maintained on write (pipeline.storage.wide.sync_indicators_wide, called by write_session and before every
-- research read); new indicators become new columns. A database upgraded to 0006 gets its rows on the next
-- session write or `alliance compare` / `export` / `query`.
DROP VIEW IF EXISTS indicators_wide;
CREATE TABLE indicators_wide (
    session_id VARCHAR PRIMARY KEY,
    run_id     VARCHAR
);

-- Self-report links: how an administration was linked to its session and how many days lay between the
-- administration date and the session (administered_on - recorded_on; NULL without a date).
ALTER TABLE self_report_administrations ADD COLUMN IF NOT EXISTS link_rule VARCHAR;  -- session_id | client_date | NULL
ALTER TABLE self_report_administrations ADD COLUMN IF NOT EXISTS link_distance_days INTEGER;
ALTER TABLE self_report_imports ADD COLUMN IF NOT EXISTS link_window_days INTEGER;

-- Every comparison row: the primary estimate (within: the mixed model's standardised within-client slope;
-- between: Spearman correlation of client means), its method, interval method, covariates, how many sessions
-- and clients contribute, and the markers / lexicons versions of the sessions used.
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS n_sessions INTEGER;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS method VARCHAR;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS estimate DOUBLE;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS estimate_ci_low DOUBLE;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS estimate_ci_high DOUBLE;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS estimate_p DOUBLE;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS estimate_q DOUBLE;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS ci_method VARCHAR;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS covariates VARCHAR;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS markers_version VARCHAR;
ALTER TABLE comparison_results ADD COLUMN IF NOT EXISTS lexicons_version VARCHAR;

-- Scores with who, when, which session, and the link's rule and distance.
CREATE OR REPLACE VIEW self_report_scores_long AS
SELECT a.administration_id, a.client_id, a.session_id, s.therapist_id,
       coalesce(a.administered_on, s.recorded_on) AS on_date, a.timepoint, a.instrument, c.scale, c.value,
       c.n_items, c.n_answered, c.prorated, c.note, i.kind, i.concern_below, i.reliable_change, a.import_id,
       a.link_rule, a.link_distance_days
FROM self_report_administrations a
JOIN self_report_scores c USING (administration_id)
JOIN self_report_instruments i ON i.import_id = a.import_id AND i.instrument = a.instrument
LEFT JOIN sessions s ON s.session_id = a.session_id;

-- More than one score of the same measure on one session (e.g. a re-import without the date column before
-- duplicates were checked regardless of date): `alliance compare` refuses these unless told which to keep.
CREATE VIEW self_report_duplicates AS
SELECT session_id, instrument, scale, timepoint, count(*) AS n_scores, list(value ORDER BY import_id) AS scores_by_import,
       list(import_id ORDER BY import_id) AS import_ids
FROM self_report_scores_long
WHERE session_id IS NOT NULL
GROUP BY session_id, instrument, scale, timepoint
HAVING count(*) > 1;

-- Research-scope item values and the instrument definitions (pseudonymised by pipeline.research.access).
CREATE VIEW research_self_report_items AS
SELECT i.administration_id, a.client_id, a.session_id, a.administered_on, a.timepoint, i.instrument, i.item,
       i.raw_value, i.item_score, i.missing_code, i.import_id
FROM self_report_items i
JOIN self_report_administrations a USING (administration_id)
WHERE (a.session_id IS NOT NULL AND a.session_id IN (SELECT session_id FROM research_sessions))
   OR (a.session_id IS NULL AND a.client_id IN (SELECT client_id FROM research_sessions));

CREATE VIEW research_self_report_instruments AS
SELECT import_id, instrument, name, source, kind, scoring, concern_below, reliable_change, definition
FROM self_report_instruments;
