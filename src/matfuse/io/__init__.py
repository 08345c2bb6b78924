"""Reading molecule tables and writing results."""

from matfuse.io.readers import find_smiles_column, read_table
from matfuse.io.table import MoleculeTable, load_molecule_table

__all__ = ["MoleculeTable", "find_smiles_column", "load_molecule_table", "read_table"]
