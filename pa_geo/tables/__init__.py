"""Label tables: a user's own proteins and labels as a task (``pa-geo fit --data.table.path labels.csv``).

A CSV, TSV or Parquet file, one row per example:

* ``id`` -- unique row id;
* ``structure`` -- PDB / mmCIF file (plain or ``.gz``) relative to the table's folder, optional ``chain`` column or
  ``path:CHAIN``; and/or ``sequence`` (required without a structure);
* ``split`` (optional) -- ``train`` / ``valid`` / ``test``; without it a seeded split grouped by sequence similarity
  is made once and written next to the table (:mod:`pa_geo.tables.similarity_split`);
* label column(s), ``label`` unless ``data.table.label_columns`` says otherwise (:mod:`pa_geo.tables.labels`);
* protein pairs: the protein columns with suffixes ``_a`` and ``_b`` (``structure_a``, ``sequence_b``, ...).
"""
from pa_geo.tables.frame import RawTable, TableRow, read_raw_table
from pa_geo.tables.labels import LabelCodec, sort_class_names
from pa_geo.tables.settings import LEVELS, TYPES, TableSettings
from pa_geo.tables.label_table import LabelTable

__all__ = ["LEVELS", "LabelCodec", "LabelTable", "RawTable", "TYPES", "TableRow", "TableSettings",
           "read_raw_table", "sort_class_names"]
