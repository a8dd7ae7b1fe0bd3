"""Write a Parquet file so that it is either absent or complete and durable.

The protocol, for a final path ``dir/name.parquet``:

1. create missing directories, fsyncing each parent after a child is made;
2. write ``dir/.name.parquet.<random>.tmp``, flush, ``fsync`` the file;
3. rename it to ``dir/name.parquet`` (``os.replace``), or hard-link it there when the
   caller must not replace an existing file (``os.link`` fails if the name is taken),
   then drop the temporary name;
4. ``fsync`` the directory, so the rename itself survives a power loss.

Only after step 4 returns may the caller commit the Kafka offsets the file holds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from courier.lake.files import TEMP_SUFFIX

COMPRESSION = "zstd"


class SegmentExists(FileExistsError):
    """The final name is taken and the caller asked not to replace it."""


def write_parquet_durably(
    table: pa.Table,
    path: Path,
    *,
    replace: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Write ``table`` to ``path`` atomically and durably; returns the file's size in bytes.

    With ``replace=False`` an existing file at ``path`` raises :class:`SegmentExists` and is
    left untouched.
    """
    directory = path.parent
    make_dirs_durably(directory)
    if metadata:
        existing = dict(table.schema.metadata or {})
        existing.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(existing)
    temp = directory / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        with open(temp, "wb") as sink:
            pq.write_table(table, sink, compression=COMPRESSION)
            sink.flush()
            os.fsync(sink.fileno())
        size = temp.stat().st_size
        if replace:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise SegmentExists(str(path)) from None
            os.unlink(temp)
        fsync_dir(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    return size


def remove_durably(paths: list[Path]) -> list[Path]:
    """Delete ``paths`` (already-missing ones are fine) and fsync their directories.

    Returns the paths that this call actually removed.
    """
    removed = []
    for path in paths:
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            continue
    for directory in sorted({p.parent for p in paths}):
        with contextlib.suppress(FileNotFoundError):
            fsync_dir(directory)
    return removed


def make_dirs_durably(directory: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of every directory it creates."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        # Another writer may have made it a moment ago: fsync anyway, it may not have yet.
        path.mkdir(exist_ok=True)
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (creates, renames, deletes) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
