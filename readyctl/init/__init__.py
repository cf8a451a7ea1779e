"""`readyctl init`: adopt readyctl on an existing project.

`detect` reads the repository (stack, migration tool, interpreter, env example), `discover`
asks a running API for its map through readyctl's own discovery, `render` writes a commented
readyctl.yaml and a GitHub Actions workflow from what was found, and `compare` reports where
an existing readyctl.yaml and the project disagree (`readyctl init --check`).
"""
