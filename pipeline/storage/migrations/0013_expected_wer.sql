-- 0013: the word error rate the transcript's confidence predicts.
--
-- session_quality.expected_wer: expected word error rate (0-1) of the session's Whisper transcript from the mean
-- probability of its words, by a line fitted on the realistic bench's renders of one session and checked held out
-- on another (mean absolute error 2.1 points; pipeline.analysis.quality.expected_wer, bench/calibrate_expected_wer.py);
-- above 0.25 the session is flagged `high_expected_wer`. An estimate of how well the words are measured, not of the
-- session. NULL for other backends (Moonshine, ROVER) and for sessions stored before. The row's run_id stays the run
-- that wrote it.
ALTER TABLE session_quality ADD COLUMN IF NOT EXISTS expected_wer DOUBLE;
