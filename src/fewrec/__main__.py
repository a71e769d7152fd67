"""``python -m fewrec``: the `fewrec` command line."""

from fewrec.cli import main

if __name__ == "__main__":
    main()
