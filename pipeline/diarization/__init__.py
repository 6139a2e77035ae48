"""Diarization: pyannote.audio with a local CAM++ embedding (`diarize`, `campplus`), RTTM files (`rttm`)."""
