"""Running sessions: model loading, the one stage sequence, end states and batch inputs."""
