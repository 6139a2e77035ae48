-- 0011: MI process codes per utterance (pipeline/codes), from the coder shipped with the package.
--
-- One row per coded turn: the therapist's main behaviour (question, reflection, therapist_input, other) or the
-- client's talk type (change, neutral, sustain), the subtype where the code has one (open/closed question,
-- simple/complex reflection, information/advice/negotiation/options), each with the coder's probability, and
-- the coder's version. `text` is the turn's de-identified text (as in turns_deidentified). The session's MITI
-- summaries are stored as indicators (mi_*), with their agreement with experts in indicator_definitions.
CREATE TABLE IF NOT EXISTS coded_utterances (
    session_id           VARCHAR NOT NULL,
    turn_index           INTEGER NOT NULL,
    speaker_role         VARCHAR NOT NULL,
    start_s              DOUBLE,
    end_s                DOUBLE,
    text                 VARCHAR NOT NULL,
    code                 VARCHAR NOT NULL,
    code_probability     DOUBLE NOT NULL,
    subtype              VARCHAR,
    subtype_probability  DOUBLE,
    coder_version        VARCHAR NOT NULL,
    run_id               VARCHAR NOT NULL,
    PRIMARY KEY (session_id, turn_index)
);
