"""Where Phantoscope keeps things: vectors (Milvus), metadata (SQL), original images (objects).

Each has one small interface and is chosen by URL, so the engine never names a backend.
"""
