"""Trace readers, inspection and replay. Every format is read into one canonical Arrow form:
`time_s` (seconds from the trace's first request), `prompt_tokens`, `output_tokens` and `key`
(a query identity for the cache), the last three null where a format has no such column."""
