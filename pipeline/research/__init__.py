"""Research: self-report instruments and import, comparison with indicators, statistics, exports, researcher access."""
