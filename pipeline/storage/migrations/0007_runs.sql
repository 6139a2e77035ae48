-- 0007: runs that survive interruption, and Prefect flow runs found by handle.
--
-- pipeline_runs.pid / host: the process that started the run. A run still 'running' whose process is gone
-- (killed, power loss) is closed as 'interrupted' when the next run on the database starts
-- (pipeline.storage.db.close_stale_runs).
-- run_items.flow_handle: the opaque handle the session flow was called with (its only Prefect parameter),
-- so withdrawal deletes exactly this database's Prefect flow runs of the erased sessions.
ALTER TABLE pipeline_runs ADD COLUMN IF NOT EXISTS pid INTEGER;
ALTER TABLE pipeline_runs ADD COLUMN IF NOT EXISTS host VARCHAR;
ALTER TABLE run_items ADD COLUMN IF NOT EXISTS flow_handle VARCHAR;
