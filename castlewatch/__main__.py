"""``python -m castlewatch``: the same command line as the ``castlewatch`` script."""

from castlewatch.cli import main

if __name__ == "__main__":
    main(prog_name="castlewatch")
