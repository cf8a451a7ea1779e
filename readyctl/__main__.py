"""`python -m readyctl`."""

if __name__ == "__main__":
    from readyctl import _interrupt

    _interrupt.install()  # before the CLI's imports: a signal now is recorded, not fatal

    from readyctl.cli import main

    main()
