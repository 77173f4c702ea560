"""Lab interop for files: XDF and EDF in, EDF+, BIDS and CSV out.

Readers return a neutral :class:`Recording` (streams with their own rates, units and
``int64`` ns timestamps, plus events); :func:`import_file` stores one in a data
directory like recorded data. Exporters read a data directory (``history``'s store,
read-only) and write other labs' formats. pyxdf and pyedflib are imported only when a
reader or exporter runs.
"""

from sensocto_lab.io.edf import read_edf
from sensocto_lab.io.export_bids import BidsExport, to_bids
from sensocto_lab.io.export_csv import to_csv
from sensocto_lab.io.export_edf import EdfExport, to_edf
from sensocto_lab.io.importer import ImportResult, import_file, read_file
from sensocto_lab.io.recording import Channel, Recording, Stream, safe_id
from sensocto_lab.io.xdf import read_xdf

__all__ = [
    "BidsExport",
    "Channel",
    "EdfExport",
    "ImportResult",
    "Recording",
    "Stream",
    "import_file",
    "read_edf",
    "read_file",
    "read_xdf",
    "safe_id",
    "to_bids",
    "to_csv",
    "to_edf",
]
