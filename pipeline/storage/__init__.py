"""DuckDB storage: numbered migrations, one transaction per session, read helpers."""
