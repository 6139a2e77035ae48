"""Process markers: each module computes one family from typed inputs and returns new values."""
