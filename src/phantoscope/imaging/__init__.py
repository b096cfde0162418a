"""Images as bytes: decoding with limits, format checks, SSRF-safe fetching. Imports nothing
of Phantoscope's own, so the operator SDK and the server share it."""
