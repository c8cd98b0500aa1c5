"""scaleladder.handoffs: typed, frozen, unit-carrying artifacts that cross rungs.

Every artifact is a frozen dataclass validated when built (``InputError``/``StabilityError``
naming the field, the value and the expectation) and registered with
:mod:`scaleladder.core.codec` (plain JSON plus NumPy arrays, read back identically).
"""
from .coarse_grained import CGPotential, CGTrajectory, pair_key
from .dataset import Configuration, ReferenceDataset
from .design import Design
from .defects import MigrationBarrier, VacancyFormationEnergy
from .dipole import ElasticDipole
from .elastic import ElasticTensor
from .events import EventCatalog, EventType
from .eos import EquationOfState
from .fracture import CriticalStress
from .microstructure import Microstructure
from .magnetism import ExchangeParameters, HamiltonianConvention, read_tb2j
from .potential import FittedPotential
from .phonons import HarmonicTSTPrefactor, PhononProperties, harmonic_rate
from .solute import InterstitialDiffusion, InterstitialSolution, SurfaceSegregation
from .structure import Structure
from .surface import SurfaceEnergy
from .thermal import ThermalConductivity
from .topology import PersistenceDiagram

__all__ = ["Configuration", "ReferenceDataset", "EquationOfState", "FittedPotential",
           "ElasticTensor", "SurfaceEnergy", "VacancyFormationEnergy", "MigrationBarrier",
           "PhononProperties", "HarmonicTSTPrefactor", "harmonic_rate", "EventCatalog", "EventType",
           "ExchangeParameters", "HamiltonianConvention", "read_tb2j", "Structure",
           "CriticalStress", "Microstructure", "CGTrajectory", "CGPotential", "pair_key",
           "Design", "PersistenceDiagram", "ThermalConductivity", "ElasticDipole",
           "InterstitialSolution", "InterstitialDiffusion", "SurfaceSegregation"]
