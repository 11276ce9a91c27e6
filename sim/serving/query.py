"""One query's state as it moves through the pipeline (one row of `queries.parquet`)."""

from __future__ import annotations

import math


class Query:
    __slots__ = ("qid", "arrival", "key", "query_tokens", "outputs", "passages", "hit",
                 "retrieval_wait", "retrieval_service", "llm_submitted", "done", "responses",
                 "outcome", "reqs", "retrieval_calls", "retrieval_timeouts", "passage_ids",
                 "chain", "semantic")

    def __init__(self, qid, arrival, key, query_tokens, outputs, passages, passage_ids=None,
                 chain=None):
        self.qid, self.arrival, self.key = qid, arrival, key
        self.query_tokens, self.outputs, self.passages = query_tokens, outputs, passages
        self.passage_ids = passage_ids  # a corpus's passages (None: anonymous draws)
        self.chain = chain  # a trace request's prompt block hashes (None: none given)
        self.semantic = 0  # 1: answered by the semantic cache; 2: and a false hit
        self.hit = False
        self.retrieval_wait = self.retrieval_service = math.nan
        self.llm_submitted = self.done = math.nan
        self.responses = 0
        self.outcome = "none"
        self.reqs: list = []  # its LLM requests, once submitted
        self.retrieval_calls = 0
        self.retrieval_timeouts = 0  # of those calls, the ones abandoned at their timeout
