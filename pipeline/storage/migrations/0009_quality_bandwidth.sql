-- 0009: telephone-band audio is a quality measure.
--
-- session_quality.high_band_db: mean power of detected speech in 4.5-7.5 kHz relative to 0.3-3 kHz
-- (pipeline.analysis.quality.estimate_high_band_db); below -50 dB the session is flagged `narrowband`
-- (telephone-band or low-passed audio: expect more word errors). NULL for sessions stored before.
ALTER TABLE session_quality ADD COLUMN IF NOT EXISTS high_band_db DOUBLE;
