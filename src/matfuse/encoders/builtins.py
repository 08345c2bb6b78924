"""Registration of the encoders that ship with matfuse."""

from matfuse.encoders.chemnet import ChemNetEncoder
from matfuse.encoders.descriptors import (
    FastRDKitDescriptorsEncoder,
    MordredEncoder,
    RDKitDescriptorsEncoder,
)
from matfuse.encoders.fingerprints import (
    AtomPairEncoder,
    MACCSEncoder,
    MorganEncoder,
    TorsionEncoder,
)
from matfuse.encoders.registry import register_encoder
from matfuse.foundation.encoders import FOUNDATION_ENCODERS

register_encoder("ecfp", MorganEncoder, description="ECFP4 bits, 2048", radius=2, n_bits=2048)
register_encoder(
    "ecfp-count", MorganEncoder, description="ECFP4 counts, 2048", radius=2, counts=True
)
register_encoder("fcfp", MorganEncoder, description="FCFP4 bits, 2048", radius=2, features=True)
register_encoder(
    "fcfp-count",
    MorganEncoder,
    description="FCFP4 counts, 2048",
    radius=2,
    features=True,
    counts=True,
)
register_encoder("maccs", MACCSEncoder, description="MACCS 166 keys")
register_encoder("atompair", AtomPairEncoder, description="atom-pair counts, 2048")
register_encoder("torsion", TorsionEncoder, description="topological torsion counts, 2048")
register_encoder("rdkit2d", RDKitDescriptorsEncoder, description="RDKit 2D descriptors")
register_encoder("rdkit2d-fast", FastRDKitDescriptorsEncoder, description="RDKit 2D, fast")
register_encoder("mordred", MordredEncoder, description="Mordred 2D descriptors")
register_encoder("chemnet", ChemNetEncoder, description="ChemNet embedding (pretrained, fcd)")

# our own pretrained encoder-decoders (weights in matfuse/weights/<name>/; torch loads
# when one first encodes, not here)
for _cls in FOUNDATION_ENCODERS:
    register_encoder(_cls.name, _cls, description=_cls.description)

# inorganic materials (pymatgen/spglib/chgnet from the `materials` extra, imported lazily)
from matfuse.encoders.materials import (  # noqa: E402
    CHGNetEncoder,
    CompositionEncoder,
    StructureDescriptorEncoder,
)

for _cls in (CompositionEncoder, StructureDescriptorEncoder, CHGNetEncoder):
    register_encoder(_cls.name, _cls, description=_cls.description)

from matfuse.transfer.encoder import TransferEncoder  # noqa: E402  (source-model embeddings)

register_encoder(TransferEncoder.name, TransferEncoder, description=TransferEncoder.description)
