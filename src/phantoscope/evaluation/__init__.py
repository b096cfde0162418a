"""Measure retrieval quality and latency of pipelines on a labelled image set."""
