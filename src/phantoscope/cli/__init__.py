"""The `phantoscope` command, one module per kind of command (see main.py)."""
