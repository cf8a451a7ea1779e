"""A minimal Django project for readyctl's migration rehearsal tests."""
