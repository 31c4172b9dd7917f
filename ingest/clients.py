"""The Google Cloud clients the commands use, made the one way they all need."""

import warnings

from google.cloud import bigtable


def open_table(project, instance, table):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator")
        return bigtable.Client(project=project).instance(instance).table(table)
