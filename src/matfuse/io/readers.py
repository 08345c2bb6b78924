from matfuse.io import *  # noqa: F403
from matfuse.io import READ_ERROR_COLUMN, find_smiles_column, read_table  # noqa: F401
