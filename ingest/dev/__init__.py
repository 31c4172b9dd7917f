"""Development tooling: the local stack of emulators, the load generator and the demo.

The pipeline never imports it; the CLI does for `ingest local` and `ingest publish --generate`.
Setting up real Google Cloud is ingest.admin's.
"""
