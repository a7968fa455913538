"""``python -m castlewatch``: the same command line as the ``castlewatch`` script."""

from castlewatch.cli.program import run

if __name__ == "__main__":
    run()
