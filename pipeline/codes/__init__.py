"""MI process codes: utterance coders trained against AnnoMI's expert codes, and MITI 4.2.1 session summaries.

``encoder`` (frozen all-MiniLM-L6-v2), ``context`` (what a coder sees of a conversation), ``coder`` (the trained
heads, their model card, load and predict), ``summary`` (MITI/MISC session summaries from codes).
"""
