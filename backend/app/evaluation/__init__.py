"""Measuring retrieval: does the appliance find the right page for a student's question?

`python -m app.evaluation` (from backend/) runs the appliance's own Retriever over a
question file and prints hit@k, MRR, follow-up and out-of-corpus results.
"""
