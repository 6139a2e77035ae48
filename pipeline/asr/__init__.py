"""Transcription: Whisper backends with word timestamps (`transcribe`) and blockwise log-mel features (`features`)."""
