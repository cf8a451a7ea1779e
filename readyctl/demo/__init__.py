"""The reference counseling API that readyctl checks by default (a separate application).

Nothing in this package imports readyctl's engine, checks, CLI or reporters. Entry points:
`readyctl.demo.managed.start()` (the launcher), `readyctl.demo.app.create_app()` (the API),
`readyctl.demo.faults.FAULTS` (the fault switches) and `python -m readyctl.demo`.
"""
