"""HTTP: the Phantoscope v1 REST API over the engine."""
