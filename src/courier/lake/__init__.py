"""The lake: every event of the chosen Kafka topics in Parquet files, queried with DuckDB.

Commands (``courier lake sink | query | compact``) live in :mod:`courier.lake.cli`; the
modules underneath, from the record to the query:

- :mod:`~courier.lake.records`: one Kafka record -> one row (envelope, decoded JSON,
  or the reason there is none); :mod:`~courier.lake.decode` does payload -> JSON;
- :mod:`~courier.lake.schema`: the Arrow schema of every file;
- :mod:`~courier.lake.buffers`: per (topic, partition, day) buffers, when they roll, which
  offsets are safe to commit;
- :mod:`~courier.lake.files` / :mod:`~courier.lake.parquet_writer`: names derived from
  topic, partition and offsets; temp file, fsync, rename, fsync the directory;
- :mod:`~courier.lake.sink`: the consume -> buffer -> write -> commit loop;
- :mod:`~courier.lake.ranges`: which files may hold the same record (overlapping ranges);
- :mod:`~courier.lake.query` / :mod:`~courier.lake.output`: DuckDB views, printed results;
- :mod:`~courier.lake.compact`: merging small files, atomically, beside a running sink.

This package imports nothing heavy itself, so ``courier lake --help`` stays quick. See
docs/lake.md.
"""
