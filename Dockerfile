# castlewatch as a sidecar container (docker-compose.yml runs it beside LocalStack).
#   docker build -t castlewatch .
#   docker run --rm castlewatch --help
# Credentials come from the standard AWS chain (environment, a mounted ~/.aws, a task role).
FROM python:3.11-slim

# A C compiler for castlewatch's optional C extension (the matcher's two hottest loops);
# without one the install still succeeds and castlewatch uses its pure-Python matchers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml setup.py README.md LICENSE ./
COPY castlewatch ./castlewatch
RUN pip install --no-cache-dir . \
    && apt-get purge -y --auto-remove gcc libc6-dev
# The example configs use the built-in packs (installed with castlewatch), and
# scripts/put_sample_events.py writes the bundled samples into the log groups.
COPY examples ./examples
COPY scripts ./scripts

# run's checkpoint, spool and publish ledger: keep them on a volume so a restart resumes exactly.
RUN mkdir -p /var/lib/castlewatch
VOLUME /var/lib/castlewatch

# castlewatch run stops gracefully on SIGTERM (docker stop): every open minute is written
# and published, the checkpoint saved.
STOPSIGNAL SIGTERM
ENTRYPOINT ["castlewatch"]
CMD ["--help"]
