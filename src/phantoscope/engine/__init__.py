"""The domain: operators, pipelines and applications, and ingesting and searching images.

Knows the storage interfaces and the operator client, never HTTP.
"""
