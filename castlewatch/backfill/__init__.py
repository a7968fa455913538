"""``castlewatch backfill``: metric filters over months of archived logs, on Dask distributed.

A CloudWatch metric filter counts only the events ingested after it was created; a
backfill runs the same compiled filters over the archives AWS already wrote to S3
(CloudTrail, VPC Flow Logs), from ``s3://bucket/prefix`` or a local folder with the same
layout, and writes the datapoints a single-process ``castlewatch replay`` of the same
events writes (every minute complete, so nothing is late), datapoint for datapoint.

- :mod:`.layout`: the key layout and the date in a key;
- :mod:`.storage`: listing a folder or bucket within the dates, opening an object;
- :mod:`.task`: what a worker runs (a partition of objects into a partial aggregate);
- :mod:`.executor`: the partitions on Dask, their retries, the merge;
- :mod:`.output`: the sinks;
- :mod:`.run`: one backfill from a configuration.

Reading an object: :mod:`castlewatch.engine.archive`; the merge:
:mod:`castlewatch.engine.partial` (the engine's, shared with replay's exact Sum).
"""
