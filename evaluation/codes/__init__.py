"""Evaluation of the MI process coders against AnnoMI's expert codes (not installed with the product)."""
