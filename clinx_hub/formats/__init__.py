"""Corpus file formats: BRAT standoff and the four i2b2/n2c2 formats, read into Documents."""

from __future__ import annotations

from .base import CorpusFormatError
from .brat import format_ann, parse_ann, read_brat_document, read_brat_folder, write_brat
from .i2b2 import (
    read_i2b2_2006,
    read_i2b2_2010,
    read_i2b2_2010_folders,
    read_i2b2_2012,
    read_i2b2_2014,
    read_xml_folder,
)

__all__ = [
    "CorpusFormatError",
    "format_ann",
    "parse_ann",
    "read_brat_document",
    "read_brat_folder",
    "read_i2b2_2006",
    "read_i2b2_2010",
    "read_i2b2_2010_folders",
    "read_i2b2_2012",
    "read_i2b2_2014",
    "read_xml_folder",
    "write_brat",
]
