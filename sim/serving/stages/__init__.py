"""SimPy stages: the retrieval pool, LLM replicas with their batching schedulers, the router."""
