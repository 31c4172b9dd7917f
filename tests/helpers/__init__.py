"""What several test modules share and none of them owns: example data, the XDM corpus,
mutations of records, exact JSON equality, pipeline arguments, profile streams.

Not a test package (nothing here is collected): tests import from it as
`from helpers.xdm_corpus import ...`; tests/conftest.py keeps tests/ on sys.path.
"""
