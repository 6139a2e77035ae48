-- 0010: two grades, never one word.
--
-- indicator_definitions kept one grade per indicator (validated | exploratory | contradicted) that mixed two
-- facts. From now on every row carries them apart (pipeline/analysis/definitions.py):
--   accuracy, accuracy_figure, accuracy_source: how well the number is measured (synthetic_truth,
--     expert_codes, realistic_bench, model_labels, not_measured; the figure; where it is reported);
--   evidence, evidence_note, evidence_source: what it is known to say about the alliance or outcome
--     (supported, none_yet, contradicted; the figures; where they are).
-- The single grade column is retired. Rows written before this migration stay readable: an indicator named
-- in the snapshot below (the markers version 1.4.0 definitions) gets its two grades from it; any other name
-- keeps its old evidence and source texts as accuracy_figure and accuracy_source (that is what they held),
-- accuracy not_measured and, from its old grade, evidence contradicted or none_yet. Nothing stored before
-- this migration had supported evidence about the alliance (docs/validation.md).
-- DuckDB refuses ALTER and UPDATE of one table in one transaction, so the table is rebuilt and renamed.
CREATE TABLE indicator_definitions_0010 (
    name             VARCHAR NOT NULL,
    speaker_roles    VARCHAR,
    unit             VARCHAR,
    definition       VARCHAR NOT NULL,
    markers_version  VARCHAR NOT NULL,
    accuracy         VARCHAR NOT NULL,       -- synthetic_truth | expert_codes | realistic_bench | model_labels | not_measured
    accuracy_figure  VARCHAR,
    accuracy_source  VARCHAR,
    evidence         VARCHAR NOT NULL,       -- supported | none_yet | contradicted
    evidence_note    VARCHAR,
    evidence_source  VARCHAR,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (name, markers_version)
);

INSERT INTO indicator_definitions_0010
SELECT d.name, d.speaker_roles, d.unit, d.definition, d.markers_version,
       coalesce(k.accuracy, 'not_measured'),
       CASE WHEN k.name IS NULL THEN d.evidence ELSE k.accuracy_figure END,
       CASE WHEN k.name IS NULL THEN d.source ELSE k.accuracy_source END,
       coalesce(k.evidence, CASE WHEN d.grade = 'contradicted' THEN 'contradicted' ELSE 'none_yet' END),
       k.evidence_note, k.evidence_source, d.run_id
FROM indicator_definitions d
LEFT JOIN (VALUES
    ('agenda_setting_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('alliance_work_rate', 'model_labels', 'its process-talk detection: held-out precision 0.12 (n 25) against language-model labels', 'docs/validation.md 6a', 'none_yet', 'AnnoMI: higher in high-quality MI, g +0.49 [+0.11, +0.87] q .003 (pre-registered A5), but MI quality is not an alliance rating and the quality codes were not blind; on ESConv nearly always 0 (not testable)', 'docs/validation.md (pre-registered)'),
    ('articulation_rate', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('backchannel_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('backchannel_rate', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('collaborative_we_count', 'model_labels', 'detection of collaborative "we": held-out precision 0.82 [0.67, 0.91] (n 38) against two language-model annotation passes (one model family, not human experts)', 'docs/validation.md 6a', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('collaborative_we_rate', 'model_labels', 'detection of collaborative "we": held-out precision 0.82 [0.67, 0.91] (n 38) against two language-model annotation passes (one model family, not human experts)', 'docs/validation.md 6a', 'none_yet', 'pre-registered tests found no detectable association: ESConv feedback rho -0.02 q .85; AnnoMI high vs low MI quality g +0.15 q .78', 'docs/validation.md (pre-registered)'),
    ('collaborative_we_share', 'model_labels', 'detection of collaborative "we": held-out precision 0.82 [0.67, 0.91] (n 38) against two language-model annotation passes (one model family, not human experts)', 'docs/validation.md 6a', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('deflection_count', 'not_measured', '', '', 'none_yet', 'as withdrawal: held-out precision 0.17 (n 6) against language-model labels', 'docs/validation.md 6a'),
    ('deflection_rate', 'not_measured', '', '', 'none_yet', 'counts deflecting phrases (what it detects); as withdrawal: held-out precision 0.17 (n 6) against language-model labels; pre-registered ESConv test not testable (0 of 134 non-zero)', 'docs/validation.md 6a'),
    ('dropped_topic_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('duration', 'synthetic_truth', 'exact by construction (0 s error): the length of the decoded audio', 'pipeline/audio/decode.py', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('energy_iqr', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('energy_median', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('energy_synchrony', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('interruption_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('listener_turn_count', 'realistic_bench', 'as a count of backchannels, on renders of real AnnoMI dialogue with inserted backchannels (2 sessions; clean, far room, AMR phone line, overlap-rich; flite voices): recall 0.57 of all truth backchannels (75/131; 0.37-0.71 per condition), 0.77 of those spoken in overlap (67/87; phone 0.42, others 0.79-1.00), precision 0.85 (75/88; 0.81-0.95) (2026-11-30). Not checked on real recordings (no labelled real data), where a short nested turn may also be laughter, a cough or noise given to the listener', 'docs/realistic_bench.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('listener_turn_rate', 'realistic_bench', 'as a count of backchannels, on renders of real AnnoMI dialogue with inserted backchannels (2 sessions; clean, far room, AMR phone line, overlap-rich; flite voices): recall 0.57 of all truth backchannels (75/131; 0.37-0.71 per condition), 0.77 of those spoken in overlap (67/87; phone 0.42, others 0.79-1.00), precision 0.85 (75/88; 0.81-0.95) (2026-11-30). Not checked on real recordings (no labelled real data), where a short nested turn may also be laughter, a cough or noise given to the listener', 'docs/realistic_bench.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('long_silence_count', 'synthetic_truth', '42/42 planted silences found, none spurious (F1 1.00, onset error median 0.03 s) (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('long_silence_total', 'synthetic_truth', 'onset/offset error median 0.03 s vs truth (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('lsm', 'not_measured', '', '', 'none_yet', 'pre-registered tests found no detectable association: ESConv feedback rho +0.11 [-0.03, +0.25] q .40; intensity drop rho +0.04 q .85; AnnoMI high vs low MI quality g -0.13 [-0.59, +0.33] q .74', 'docs/validation.md (pre-registered)'),
    ('lsm_turn_mean', 'not_measured', '', '', 'none_yet', 'pre-registered tests found no detectable association: iEval EU rho +0.04 [-0.01, +0.08] q .15, ER rho +0.04 q .15 (240 participants)', 'docs/validation.md (pre-registered)'),
    ('mean_pause', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('mean_switching_gap', 'synthetic_truth', 'switching-gap error median 0.04 s, p90 0.10 s (179/184 transfers) (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('mean_turn_duration', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('mean_turn_words', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('minimal_response_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('minimal_response_rate', 'not_measured', '', '', 'none_yet', 'counts short replies to open questions (what it detects); as withdrawal: held-out precision 0.00 (n 10) against language-model labels', 'docs/validation.md 6a'),
    ('new_material_share', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('open_question_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('open_question_share', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('overlap_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('pause_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('pause_rate', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('pitch_iqr', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('pitch_median', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('pitch_synchrony', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('process_talk_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('prosody_time', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('question_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('question_rate', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('rate_convergence', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('rate_synchrony', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('role_confidence', 'expert_codes', 'the role rule is right on 133/133 AnnoMI transcripts (roles as the dataset''s experts transcribed them; text only) and on every render', 'README.md (Roles); tests/analysis', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('rupture_candidate_rate', 'not_measured', '', '', 'contradicted', 'as a rupture detector: held-out precision 0.02 [0.01, 0.06] (n 137) against language-model labels, no better than an unflagged reply (5 of 80 were ruptures); AnnoMI: higher in high-quality MI, g +0.36, contrary to prediction; ESConv feedback rho +0.15 [+0.01, +0.29] (predicted negative) q .25; iEval ER rho +0.04 q .15 (pre-registered H5, H12)', 'docs/validation.md (pre-registered; 6a)'),
    ('rupture_confrontation_count', 'not_measured', '', '', 'contradicted', 'complaint and rejected-suggestion cues: held-out precision 0.00 (n 3 and 1), dev 0.33 and 0.00, against language-model labels', 'docs/validation.md 6a'),
    ('rupture_withdrawal_count', 'not_measured', '', '', 'contradicted', 'its cues (topic shift 0.02, minimal response 0.00, deflection 0.17 held-out precision as ruptures) do not find withdrawal; AnnoMI: higher in high-quality MI, g +0.65 [+0.20, +1.11], contrary to prediction', 'docs/validation.md (pre-registered A2; 6a)'),
    ('self_disclosure_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('self_disclosure_max_intimacy', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('session_summary_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('silence_after_probe_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('speaking_time', 'synthetic_truth', 'DER 2.4 %, word attribution 99.8 % vs truth (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('speech_rate', 'synthetic_truth', 'rate error +0.5 % (therapist) / +2.7 % (client) pooled vs truth (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('speech_time', 'synthetic_truth', 'DER 2.4 % pooled vs the renderer''s truth (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('summary_invites_correction_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('syllable_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('talk_time_share', 'synthetic_truth', 'DER 2.4 %, word attribution 99.8 % vs truth (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('topic_shift_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('topic_shift_rate', 'not_measured', '', '', 'contradicted', 'as avoidance: held-out precision 0.02 [0.01, 0.06] (n 117) against language-model labels; AnnoMI: higher in high-quality MI, g +0.78 [+0.30, +1.26], contrary to prediction', 'docs/validation.md (pre-registered A3; 6a)'),
    ('turn_count', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('turns_per_minute', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('voiced_share', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('we_count', 'synthetic_truth', 'pooled count within 5 % of truth (therapist -4.3 %, client 0 %) (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('we_i_ratio', 'not_measured', '', '', 'none_yet', 'pre-registered test found no detectable association: ESConv intensity drop rho -0.03 [-0.17, +0.11] q .85', 'docs/validation.md (pre-registered)'),
    ('we_rate', 'synthetic_truth', 'pooled count within 5 % of truth (therapist -4.3 %, client 0 %) (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('we_you_ratio', 'not_measured', '', '', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)'),
    ('word_count', 'synthetic_truth', 'WER 9.3 % pooled vs truth (six renders of real AnnoMI dialogue, exact truth)', 'docs/render_accuracy.md', 'none_yet', 'not tested against alliance or outcome ratings', 'docs/validation.md (not among the pre-registered hypotheses)')
) AS k(name, accuracy, accuracy_figure, accuracy_source, evidence, evidence_note, evidence_source) ON k.name = d.name;

DROP TABLE indicator_definitions;
ALTER TABLE indicator_definitions_0010 RENAME TO indicator_definitions;
