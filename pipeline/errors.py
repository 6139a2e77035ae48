"""One exception hierarchy for the whole pipeline.

Every error names the bad value and, where there is one, what the user can do about it.
"""

from __future__ import annotations


class AllianceError(Exception):
    """Base class of every error the pipeline raises on purpose."""

    #: Short machine-readable code stored in run reports (``failure_code``).
    code: str = "error"


class ConfigError(AllianceError):
    """An option or configuration value is invalid."""

    code = "config"


class InvalidIdError(ConfigError):
    """An identifier (session, client, therapist, ...) breaks the id rules of :mod:`pipeline.ids`."""

    code = "invalid_id"


class RunInterruptedError(AllianceError):
    """The run was interrupted (SIGINT/SIGTERM) while this recording was being computed."""

    code = "interrupted"


class AudioError(AllianceError):
    """A recording cannot be used."""

    code = "audio"


class AudioMissingError(AudioError):
    code = "audio_missing"


class AudioUnreadableError(AudioError):
    """Corrupt, truncated or wrong-format audio."""

    code = "audio_unreadable"


class AudioEmptyError(AudioError):
    code = "audio_empty"


class AudioTooShortError(AudioError):
    code = "audio_too_short"


class AudioSilentError(AudioError):
    code = "audio_silent"


class AudioNotAFileError(AudioError):
    """The path exists but is not a regular file (a directory, a FIFO, a device): never opened for reading."""

    code = "audio_not_a_file"


class AudioTruncatedError(AudioUnreadableError):
    """The header declares more audio data than the file holds (cut short, or a header that lies)."""

    code = "audio_truncated"


class AudioNonFiniteError(AudioUnreadableError):
    """Decoded samples that are not numbers (NaN) or infinite: a broken float file, caught at decode."""

    code = "audio_not_finite"


class AudioSampleRateError(AudioUnreadableError):
    """The declared sample rate is outside the plausible range (``pipeline.audio.decode`` bounds)."""

    code = "audio_sample_rate"


class AudioChannelsError(AudioUnreadableError):
    """The declared channel count is outside the plausible range."""

    code = "audio_channels"


class AudioTooLongError(AudioError):
    """The declared (or decoded) duration is longer than the maximum a session may have."""

    code = "audio_too_long"


class ConsentError(AllianceError):
    """No valid consent is recorded for a recording."""

    code = "no_consent"


class ConsentInvalidError(ConsentError):
    """A consent record exists but is invalid (a field is missing, malformed or implausible)."""

    code = "consent_invalid"


class ConsentWithdrawnError(ConsentError):
    """The consent record says consent was withdrawn, or a withdrawal is registered for the recording."""

    code = "consent_withdrawn"


class ModelError(AllianceError):
    """A model's files are missing, incomplete or fail their checksum."""

    code = "model"


class ModelMissingError(ModelError):
    code = "model_missing"


class ModelChecksumError(ModelError):
    code = "model_checksum"


class StageError(AllianceError):
    """A pipeline stage failed on a valid input; ``stage`` names it."""

    code = "stage_failed"

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage


class NoSpeechError(AllianceError):
    """No speech was detected, or no recognised word lies in detected speech (plausibility gate)."""

    code = "no_speech"

    def __init__(self, message: str, *, code: str = "no_speech") -> None:
        super().__init__(message)
        self.code = code
        self.stage = "analysis"


class SingleSpeakerError(AllianceError):
    """The recording holds one voice, not a two-person conversation (plausibility gate): nothing is stored."""

    code = "single_speaker"
    stage = "analysis"


class ImplausibleValueError(AllianceError):
    """A computed value is impossible (e.g. a speech rate no human reaches): the session is not stored."""

    code = "implausible_value"
    stage = "analysis"


class StorageError(AllianceError):
    """The database could not be opened, migrated or written."""

    code = "storage"


class SessionNotFoundError(StorageError):
    code = "session_not_found"


class DatabaseLockedError(StorageError):
    """Another process (a second run, a ``duckdb`` shell, a notebook) holds the database file's lock."""

    code = "database_locked"


class InstrumentConfigError(ConfigError):
    """A self-report instrument is unknown or its declaration is invalid."""

    code = "instrument_config"


class SelfReportImportError(AllianceError):
    """A self-report file cannot be imported at all (unreadable, no usable columns).

    Row-level problems never raise: they go to the import report.
    """

    code = "self_report_import"


class ComparisonError(AllianceError):
    """A comparison cannot be run (no data, unknown indicator or measure)."""

    code = "comparison"


class ExportError(AllianceError):
    """An export was asked for something that does not exist or cannot be written."""

    code = "export"


class AccessDeniedError(AllianceError):
    """The acting role may not see this.

    E.g. a clinician asking for another therapist's session, a researcher asking for a raw table.
    """

    code = "access_denied"
