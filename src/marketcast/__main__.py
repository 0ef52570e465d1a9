"""``python -m marketcast``: the ``marketcast`` command, for an environment whose scripts folder
is not on ``PATH`` (or to pick the interpreter explicitly)."""

from marketcast.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
