"""`python -m readyctl`."""

from readyctl.cli import main

if __name__ == "__main__":
    main()
