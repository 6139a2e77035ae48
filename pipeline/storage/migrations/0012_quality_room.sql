-- 0012: the room is a quality measure.
--
-- session_quality.rt60_s: blind reverberation time in seconds from the free decays of the speech envelope, with
-- the stationary noise floor subtracted (pipeline.audio.room.estimate_room); above 0.65 s the session is flagged
-- `reverberant`. session_quality.early_drop_db: how far those decays fall in their first 50 ms (a C50-like
-- measure). session_quality.modulation_ratio_db: speech-to-reverberation modulation energy ratio (SRMR-like,
-- pipeline.audio.room.modulation_ratio_db). None of the three measures the talker's distance (docs/realistic_bench.md).
-- NULL for sessions stored before, and where too few decays were found. The row's run_id stays the run that wrote it.
ALTER TABLE session_quality ADD COLUMN IF NOT EXISTS rt60_s DOUBLE;
ALTER TABLE session_quality ADD COLUMN IF NOT EXISTS early_drop_db DOUBLE;
ALTER TABLE session_quality ADD COLUMN IF NOT EXISTS modulation_ratio_db DOUBLE;
