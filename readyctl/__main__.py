"""`python -m readyctl`."""

if __name__ == "__main__":
    from readyctl._entry import main

    main()
