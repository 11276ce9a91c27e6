"""searchsim: a discrete-event simulator of LLM-powered web search serving."""

__version__ = "0.1.0"
