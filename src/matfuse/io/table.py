from matfuse.io import *  # noqa: F403
from matfuse.io import MoleculeTable, load_molecule_table  # noqa: F401
