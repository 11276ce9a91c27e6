"""Unit conversions used across the layers, each defined once."""

SECONDS_PER_HOUR = 3600.0
TOKENS_PER_WORD = 1000.0 / 750.0  # the article's 1,000 tokens per 750 words
