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


class ConsentError(AllianceError):
    """No valid consent is recorded for a recording."""

    code = "no_consent"


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


class StorageError(AllianceError):
    """The database could not be opened, migrated or written."""

    code = "storage"


class SessionNotFoundError(StorageError):
    code = "session_not_found"


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
