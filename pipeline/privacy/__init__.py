"""Privacy at the boundary: consent records (`consent`) and de-identification of text (`deid`)."""
