"""``python -m rnnkit``: the same command line as the ``rnnkit`` script."""

from rnnkit.cli import run

if __name__ == "__main__":
    run()
