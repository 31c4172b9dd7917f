"""The domain, in plain Python: records and their error classes, parsing, the catalog, the
schema registry, identities, the merge, and the stored layouts of the profile table, the
lake and the dead letter. Nothing here knows Beam, but for its FileSystems (so that
gs:// paths read like local ones); transforms/ adapts it to Beam."""
