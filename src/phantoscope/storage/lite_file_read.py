"""Milvus Lite data files read so that a segment holds its vectors once before its index
attaches.

A segment keeps the Arrow table it read from its data file and, as numpy, its vectors. When
the vector column comes in one chunk the numpy array is a view of it; a file of several row
groups reads as one chunk per row group, and milvus-lite (3.2.2) then joins the chunks into a
new array: the segment holds its vectors twice until its index attaches and `lite_one_copy`
frees both. `lite_compaction` writes a merged file one input file at a time, one row group
each, so every merged segment waited for its HNSW build (minutes at 100k rows) with two
copies: 1 GB for a 100k-row 1280-d segment, and a merge of 200k rows has two such segments.

`read` reads such a file one row group at a time into a single buffer per vector column,
so the column comes in one chunk and the segment's numpy vectors are a view of it, with no
second copy even for a moment. Files of one row group, and any whose vectors have nulls
(milvus-lite replaces those with zeros in its numpy copy), are read as milvus-lite reads
them. `install` makes milvus-lite's segments read their files this way (`lite_search.install`
calls it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from phantoscope.storage.lite_swap import MethodSwap

__all__ = ["install", "installed", "read", "uninstall"]


def _segment_module() -> Any:
    from milvus_lite.storage import segment

    return segment


def _reading_once(original: Callable[[str], Any]) -> Callable[[str], Any]:
    def read_data_file(path: str) -> Any:
        return read(path, original)

    return read_data_file


_swap = MethodSwap(_segment_module, "read_data_file", _reading_once)
install, uninstall, installed = _swap.install, _swap.uninstall, _swap.installed


def read(path: str, fallback: Callable[[str], Any]) -> Any:
    """The data file at ``path`` as an Arrow table whose float32 vector columns are one chunk
    each; ``fallback(path)`` where it has one row group, no vector column, or null vectors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    wide = [at for at, field in enumerate(schema) if pa.types.is_fixed_size_list(field.type)
            and field.type.value_type == pa.float32()]
    if file.metadata.num_row_groups < 2 or not wide:
        return fallback(path)
    rows = file.metadata.num_rows
    flats = {at: np.empty(rows * schema.field(at).type.list_size, dtype=np.float32)
             for at in wide}
    rest = [at for at in range(len(schema)) if at not in flats]
    parts, start = [], 0
    for group in range(file.metadata.num_row_groups):
        part = file.read_row_group(group)
        for at, flat in flats.items():
            column = part.column(at)
            if column.null_count:
                return fallback(path)
            offset = start * schema.field(at).type.list_size
            for chunk in column.chunks:
                values = chunk.flatten().to_numpy(zero_copy_only=False)
                flat[offset:offset + len(values)] = values
                offset += len(values)
        parts.append(part.select(rest))
        start += part.num_rows
        del part  # its vectors are copied: one row group held at a time
    table = pa.concat_tables(parts)
    for at in wide:  # ascending, so each goes back to its place in the schema
        field = schema.field(at)
        values = pa.Array.from_buffers(pa.float32(), len(flats[at]),
                                       [None, pa.py_buffer(flats[at])])
        table = table.add_column(at, field, pa.FixedSizeListArray.from_arrays(
            values, type=field.type))
    return table.replace_schema_metadata(schema.metadata)
