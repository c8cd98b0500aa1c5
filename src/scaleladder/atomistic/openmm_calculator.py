"""OpenMM as an ASE calculator, and a :class:`FixedChargeForceField` rebuilt as an OpenMM System.

Extra ``openmm`` (``pip install 'scaleladder[openmm]'``); OpenMM is imported inside the
functions that need it, so ``import scaleladder.atomistic`` never loads it.

Units at the boundary (OpenMM: nm, kJ/mol, ps, e; ASE: Å, eV) are converted here and only here
(:data:`NM_IN_A`, :data:`KJ_MOL_IN_EV`, from ASE's CODATA 2014 set).  OpenMM's Coulomb constant
(``ONE_4PI_EPS0 = 138.93545764438198`` kJ/mol nm/e², CODATA 2018) differs from ASE's ``Hartree *
Bohr`` by 9e-10 relative; :func:`openmm_system_from_forcefield` rescales the charges it gives
``NonbondedForce`` by ``sqrt(k_ASE / k_OpenMM)`` so both engines evaluate the same model to
round-off, and writes ASE's constant into its custom forces.
"""
from __future__ import annotations

import math

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase import units

from ..core import validate
from ..core.errors import CalculationError, InputError, MissingExtraError
from .forcefield import COULOMB_CONSTANT, FixedChargeForceField

__all__ = ["OpenMMCalculator", "openmm_system_from_forcefield", "NM_IN_A", "KJ_MOL_IN_EV"]

#: One nanometre in Å.
NM_IN_A = 10.0
#: One kJ/mol in eV (ASE's CODATA 2014 set).
KJ_MOL_IN_EV = units.kJ / units.mol
#: OpenMM's ``ONE_4PI_EPS0`` (``SimTKOpenMMRealType.h``, OpenMM >= 8), kJ/mol nm / e².
OPENMM_ONE_4PI_EPS0 = 138.93545764438198

_EV_A_IN_KJ_MOL_NM = 1.0 / (KJ_MOL_IN_EV * NM_IN_A)      # eV Å -> kJ/mol nm


def _openmm():
    try:
        import openmm
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError("openmm", "openmm", "OpenMM force evaluation") from exc
    return openmm


class OpenMMCalculator(Calculator):
    """ASE calculator evaluating an ``openmm.System`` (energy, forces).

    Parameters
    ----------
    system : openmm.System
        The model; its particles are the atoms, in order.  A system that uses periodic
        boundaries gets its box from ``atoms.cell`` at every call.
    platform : str
        OpenMM platform name (default ``"CPU"``; ``"Reference"`` is the double-precision
        reference implementation, ``"CUDA"``/``"OpenCL"`` where available).
    platform_properties : dict, optional
        Platform properties, e.g. ``{"Threads": "2"}`` (CPU) or ``{"Precision": "double"}``.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    Properties: ``energy``, ``free_energy`` (eV) and ``forces`` (eV/Å).  No stress: OpenMM
    does not return the virial, and a finite-difference stress through the CPU platform's
    single-precision forces would not be a derivative worth the name.  The CPU platform
    evaluates nonbonded forces in single precision (relative errors ~1e-6 to 1e-7); use
    ``platform="Reference"`` for double-precision comparisons.  A periodic cell must be in
    OpenMM's reduced form (``a`` along x, ``b`` in the xy plane, ``|b_x| <= a_x / 2``, ...).
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    nolabel = True

    def __init__(self, system, platform: str = "CPU", platform_properties: dict | None = None,
                 **kwargs):
        mm = _openmm()
        super().__init__(**kwargs)
        if not isinstance(system, mm.System):
            raise InputError("system", type(system).__name__, "an openmm.System")
        names = [mm.Platform.getPlatform(i).getName()
                 for i in range(mm.Platform.getNumPlatforms())]
        validate.one_of("platform", platform, names)
        props = dict(platform_properties or {})
        for k, v in props.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InputError(f"platform_properties[{k!r}]", v, "string keys and values")
        self.system = system
        self.platform = platform
        self.platform_properties = props
        self._context = None

    @classmethod
    def from_forcefield(cls, ff: FixedChargeForceField, atoms, platform: str = "CPU",
                        platform_properties: dict | None = None, **kwargs) -> "OpenMMCalculator":
        """The OpenMM engine for a :class:`FixedChargeForceField` model of ``atoms``.

        Unlike a calculator built on a bare ``openmm.System``, it remembers the model, so it
        offers what QM/MM needs from a topology-bound MM engine: :meth:`subset` (the same model
        restricted to some atoms, e.g. the MM region) and :meth:`get_virtual_charges`.
        """
        calc = cls(openmm_system_from_forcefield(ff, atoms), platform=platform,
                   platform_properties=platform_properties, **kwargs)
        calc.forcefield = ff
        calc._masses = np.asarray(atoms.get_masses(), dtype=float).copy()
        calc._pbc = np.asarray(atoms.pbc, dtype=bool).copy()
        calc._cell = np.array(atoms.cell[:], dtype=float)
        return calc

    def _model(self) -> FixedChargeForceField:
        ff = getattr(self, "forcefield", None)
        if ff is None:
            raise InputError("calc", "OpenMMCalculator(system)", "an OpenMMCalculator built "
                             "with OpenMMCalculator.from_forcefield(ff, atoms)",
                             "a bare openmm.System has no model to restrict or read charges from")
        return ff

    def subset(self, indices) -> "OpenMMCalculator":
        """The same model restricted to ``indices`` (see ``FixedChargeForceField.subset``),
        as a new OpenMM engine on the same platform."""
        from ase import Atoms

        ff = self._model()
        idx = [int(i) for i in indices]
        sub_ff = ff.subset(idx)
        sub_atoms = Atoms(masses=self._masses[idx], positions=np.zeros((len(idx), 3)),
                          cell=self._cell, pbc=self._pbc)
        return OpenMMCalculator.from_forcefield(sub_ff, sub_atoms, platform=self.platform,
                                                platform_properties=self.platform_properties)

    def get_virtual_charges(self, atoms) -> np.ndarray:
        """The model's charges (e), one per atom (the protocol of ASE's EIQMMM and the
        scaleladder couplings)."""
        return self._model().get_virtual_charges(atoms)

    @property
    def n_atoms(self) -> int:
        """Number of particles of the system."""
        return int(self.system.getNumParticles())

    def _get_context(self):
        if self._context is None:
            mm = _openmm()
            integrator = mm.VerletIntegrator(0.001)
            plat = mm.Platform.getPlatformByName(self.platform)
            self._context = mm.Context(self.system, integrator, plat, self.platform_properties)
            self._integrator = integrator      # the context needs it alive
        return self._context

    def _box(self, atoms):
        mm = _openmm()
        if not np.all(atoms.pbc):
            raise InputError("atoms.pbc", atoms.pbc.tolist(),
                             "pbc=True along all three directions (the OpenMM system is "
                             "periodic)")
        cell = np.asarray(atoms.cell, dtype=float)
        a, b, c = cell
        reduced = (a[1] == 0 and a[2] == 0 and b[2] == 0 and a[0] > 0 and b[1] > 0 and c[2] > 0
                   and abs(b[0]) <= 0.5 * a[0] + 1e-12 and abs(c[0]) <= 0.5 * a[0] + 1e-12
                   and abs(c[1]) <= 0.5 * b[1] + 1e-12)
        if not reduced:
            raise InputError("atoms.cell", cell.tolist(),
                             "a cell in OpenMM's reduced form (a along x, b in the xy plane, "
                             "|b_x| <= a_x/2, |c_x| <= a_x/2, |c_y| <= b_y/2)")
        return [mm.Vec3(*(v / NM_IN_A)) for v in cell]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Energy and forces from OpenMM, converted to eV and eV/Å."""
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        if len(a) != self.n_atoms:
            raise InputError("atoms", f"{len(a)} atoms",
                             f"the {self.n_atoms} particles of the OpenMM system")
        pos = validate.finite_array("atoms.positions", a.positions, (len(a), 3))
        ctx = self._get_context()
        if self.system.usesPeriodicBoundaryConditions():
            ctx.setPeriodicBoxVectors(*self._box(a))
        ctx.setPositions(pos / NM_IN_A)
        state = ctx.getState(getEnergy=True, getForces=True)
        e = state.getPotentialEnergy()._value * KJ_MOL_IN_EV          # kJ/mol -> eV
        f = np.asarray(state.getForces(asNumpy=True)._value) * (KJ_MOL_IN_EV / NM_IN_A)
        if not (math.isfinite(e) and np.all(np.isfinite(f))):
            raise CalculationError("OpenMM returned a non-finite energy or forces (overlapping "
                                   "atoms or a blown-up structure)")
        self.results = {"energy": e, "free_energy": e, "forces": f}


def openmm_system_from_forcefield(ff: FixedChargeForceField, atoms):
    """The same fixed-charge model as an ``openmm.System``.

    Parameters
    ----------
    ff : FixedChargeForceField
        The model (charges, LJ, bonds, angles, exclusions, 1-4 exceptions, electrostatics).
    atoms : ase.Atoms
        Masses (amu) and periodicity (all three directions periodic, or none).

    Returns
    -------
    openmm.System
        ``HarmonicBondForce`` and ``HarmonicAngleForce`` (same ``1/2 k`` convention), and:

        * ``coulomb="direct"``, no cutoff: ``NonbondedForce.NoCutoff`` with the exclusions and
          1-4 pairs as exceptions -- the exact comparison for clusters;
        * ``coulomb="direct"`` with a cutoff: ``NonbondedForce.CutoffNonPeriodic`` or
          ``CutoffPeriodic`` with ``reactionFieldDielectric = 1`` (which is Coulomb shifted to
          zero at the cutoff, the force field's model), no dispersion correction, and for
          ``lj_shift`` a ``CustomNonbondedForce`` holding the LJ shift constant;
        * ``coulomb="dsf"``: a ``CustomNonbondedForce`` with the damped shifted force and LJ,
          a ``CustomBondForce`` for the 1-4 exceptions, and a ``CustomExternalForce`` for the
          DSF self term.
    """
    mm = _openmm()
    if not isinstance(ff, FixedChargeForceField):
        raise InputError("ff", type(ff).__name__, "a FixedChargeForceField")
    if len(atoms) != ff.n_atoms:
        raise InputError("atoms", f"{len(atoms)} atoms", f"the force field's {ff.n_atoms} atoms")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and not pbc.all():
        raise InputError("atoms.pbc", pbc.tolist(), "all True or all False (OpenMM boxes are "
                         "periodic in three directions)")
    periodic = bool(pbc.all())
    if periodic and ff.cutoff is None:
        raise InputError("ff.cutoff", None, "a cutoff for a periodic system")
    system = mm.System()
    for m in atoms.get_masses():
        system.addParticle(float(m))
    if periodic:
        system.setDefaultPeriodicBoxVectors(
            *[mm.Vec3(*(v / NM_IN_A)) for v in np.asarray(atoms.cell, dtype=float)])

    # bonded terms: eV/Å² -> kJ/mol/nm², eV/rad² -> kJ/mol/rad²
    bf = mm.HarmonicBondForce()
    for i, j, k, r0 in ff.bonds:
        bf.addBond(i, j, r0 / NM_IN_A, k * NM_IN_A ** 2 / KJ_MOL_IN_EV)
    af = mm.HarmonicAngleForce()
    for i, j, k, kt, t0 in ff.angles:
        af.addAngle(i, j, k, t0, kt / KJ_MOL_IN_EV)
    bf.setUsesPeriodicBoundaryConditions(periodic)
    af.setUsesPeriodicBoundaryConditions(periodic)
    system.addForce(bf)
    system.addForce(af)

    q = ff.charges
    sig_nm = ff.lj_sigma / NM_IN_A
    eps_kj = ff.lj_epsilon / KJ_MOL_IN_EV
    k_e = COULOMB_CONSTANT * _EV_A_IN_KJ_MOL_NM           # kJ/mol nm / e², ASE's value
    rc_nm = None if ff.cutoff is None else ff.cutoff / NM_IN_A
    excluded = sorted(ff.excluded_pairs)
    pairs14 = sorted(ff.pairs14)
    sc, sl = ff.scale14

    def lj_pair(i, j):
        return 0.5 * (sig_nm[i] + sig_nm[j]), math.sqrt(eps_kj[i] * eps_kj[j])

    if ff.coulomb == "direct":
        scale = math.sqrt(k_e / OPENMM_ONE_4PI_EPS0)
        nb = mm.NonbondedForce()
        if rc_nm is None:
            nb.setNonbondedMethod(mm.NonbondedForce.NoCutoff)
        else:
            nb.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic if periodic
                                  else mm.NonbondedForce.CutoffNonPeriodic)
            nb.setCutoffDistance(rc_nm)
            nb.setReactionFieldDielectric(1.0)
            nb.setUseDispersionCorrection(False)
            nb.setUseSwitchingFunction(False)
            nb.setExceptionsUsePeriodicBoundaryConditions(periodic)
        for a in range(ff.n_atoms):
            nb.addParticle(q[a] * scale, sig_nm[a] if sig_nm[a] > 0 else 0.1, eps_kj[a])
        for i, j in excluded:
            nb.addException(i, j, 0.0, 0.1, 0.0)
        for i, j in pairs14:
            s, e = lj_pair(i, j)
            nb.addException(i, j, sc * q[i] * q[j] * scale ** 2, s if s > 0 else 0.1, sl * e)
        system.addForce(nb)
        if rc_nm is not None and ff.lj_shift and np.any(eps_kj > 0):
            sh = mm.CustomNonbondedForce(
                "-4*eps*((sig/rc)^12 - (sig/rc)^6); sig = 0.5*(sig1 + sig2); "
                "eps = sqrt(eps1*eps2)")
            sh.addGlobalParameter("rc", rc_nm)
            _add_custom_nonbonded(sh, ff, sig_nm, eps_kj, None, rc_nm, periodic,
                                  excluded + pairs14)
            system.addForce(sh)
        return system

    # damped shifted force (Fennell & Gezelter 2006), all in nm and kJ/mol
    a_nm = ff.dsf_alpha * NM_IN_A
    ec = math.erfc(a_nm * rc_nm)
    fsh = ec / rc_nm ** 2 + 2 * a_nm / math.sqrt(math.pi) * math.exp(-(a_nm * rc_nm) ** 2) / rc_nm
    lsh = "4*eps*((sig/rc)^12 - (sig/rc)^6)" if ff.lj_shift else "0"
    cf = mm.CustomNonbondedForce(
        f"ke*q1*q2*(erfc(alpha*r)/r - ecut + fshift*(r - rc)) "
        f"+ 4*eps*((sig/r)^12 - (sig/r)^6) - ({lsh}); "
        "sig = 0.5*(sig1 + sig2); eps = sqrt(eps1*eps2)")
    for name, val in (("ke", k_e), ("alpha", a_nm), ("ecut", ec / rc_nm), ("fshift", fsh),
                      ("rc", rc_nm)):
        cf.addGlobalParameter(name, val)
    _add_custom_nonbonded(cf, ff, sig_nm, eps_kj, q, rc_nm, periodic, excluded + pairs14)
    system.addForce(cf)
    if pairs14:
        ex = mm.CustomBondForce("ke*qq/r + 4*eps*((sig/r)^12 - (sig/r)^6)")
        ex.addGlobalParameter("ke", k_e)
        for name in ("qq", "sig", "eps"):
            ex.addPerBondParameter(name)
        for i, j in pairs14:
            s, e = lj_pair(i, j)
            ex.addBond(i, j, [sc * q[i] * q[j], s, sl * e])
        ex.setUsesPeriodicBoundaryConditions(periodic)
        system.addForce(ex)
    se = mm.CustomExternalForce("eself")
    se.addPerParticleParameter("eself")
    for a, e in enumerate(ff._self_energies() / KJ_MOL_IN_EV):
        se.addParticle(a, [e])
    system.addForce(se)
    return system


def _add_custom_nonbonded(force, ff, sig_nm, eps_kj, q, rc_nm, periodic, excluded):
    mm = _openmm()
    if q is not None:
        force.addPerParticleParameter("q")
    force.addPerParticleParameter("sig")
    force.addPerParticleParameter("eps")
    force.setNonbondedMethod(mm.CustomNonbondedForce.CutoffPeriodic if periodic
                             else mm.CustomNonbondedForce.CutoffNonPeriodic)
    force.setCutoffDistance(rc_nm)
    force.setUseLongRangeCorrection(False)
    for a in range(ff.n_atoms):
        prm = [sig_nm[a], eps_kj[a]]
        force.addParticle(prm if q is None else [q[a]] + prm)
    for i, j in excluded:
        force.addExclusion(i, j)
