-- 0008: which indicator each column of indicators_wide holds.
--
-- indicators_wide names a column `<name>_<role>` (or `<name>` for a session-level value); the name alone cannot
-- say which part is the role, and two indicators could map to one column (a session-level `x_client` and the
-- client's `x`). This table records the indicator of every column; pipeline.storage.wide.sync_indicators_wide
-- maintains it and refuses a second indicator for a column. `alliance compare` reads indicators_wide through it
-- instead of scanning the long indicators table.
CREATE TABLE IF NOT EXISTS indicators_wide_columns (
    column_name  VARCHAR PRIMARY KEY,
    name         VARCHAR NOT NULL,
    speaker_role VARCHAR
);
INSERT INTO indicators_wide_columns
SELECT DISTINCT CASE WHEN speaker_role IS NULL THEN name ELSE name || '_' || speaker_role END, name, speaker_role
FROM indicators
WHERE (CASE WHEN speaker_role IS NULL THEN name ELSE name || '_' || speaker_role END) IN (
    SELECT column_name FROM information_schema.columns WHERE table_name = 'indicators_wide')
ON CONFLICT DO NOTHING;
