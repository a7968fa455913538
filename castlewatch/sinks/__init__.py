"""Where datapoints go: local files (JSON Lines, CSV, Avro) and stdout.

See :mod:`castlewatch.sinks.local` for the formats, the Avro schema
(``datapoint.avsc``, shipped with the package) and the checkpoint/resume contract.
"""

from castlewatch.sinks import local
from castlewatch.sinks.local import *  # noqa: F403 - the public names, listed in local.__all__

__all__ = local.__all__
