"""Validators of electronic-structure settings, for entry points that must fail before work starts.

Each checks a name against PySCF's own libraries (libxc for functionals, PySCF's basis and GTH
pseudopotential libraries for the elements that will be computed) and raises
:class:`~scaleladder.core.errors.InputError` naming the field, the value and what was expected.
Ladders call them while resolving their settings, so ``electronic.xc=FOO`` is refused before the
first stage instead of after an hour of other stages.
"""
from __future__ import annotations

import warnings
from typing import Iterable

from ..core.errors import InputError

__all__ = ["check_xc", "check_basis", "check_pseudo"]


def check_xc(field: str, value: str) -> str:
    """``value`` if libxc (through PySCF, with this package's "LDA" alias) knows the functional."""
    from pyscf.dft import libxc

    from .pyscf_calculator import pyscf_xc

    if not isinstance(value, str) or not value.strip():
        raise InputError(field, value, "an exchange-correlation functional name such as 'PBE'")
    try:
        libxc.parse_xc(pyscf_xc(value))
    except Exception as exc:  # libxc raises KeyError / ValueError / RuntimeError for unknown names
        raise InputError(field, value, "a functional libxc knows (e.g. LDA, PBE, PBE0, B3LYP, "
                         "SCAN)", hint=str(exc).strip("'\"")) from None
    return value


def _check_library(field: str, value: str, elements: Iterable[str], load, what: str,
                   example: str) -> str:
    """``value`` if ``load(value, element)`` finds data for every element; else InputError."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, value, f"a {what} name such as {example}")
    elements = sorted(set(elements))
    missing = []
    for el in elements:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = load(value, el)
        except Exception:  # BasisNotFoundError, KeyError, RuntimeError, ...
            data = None
        if not data:
            missing.append(el)
    if missing:
        raise InputError(field, value, f"a {what} in PySCF's library for " + ", ".join(elements)
                         + f" (e.g. {example})", hint="not found for " + ", ".join(missing))
    return value


def check_basis(field: str, value: str, elements: Iterable[str]) -> str:
    """``value`` if PySCF's basis library has it for every element of ``elements``."""
    from pyscf import gto

    return _check_library(field, value, elements, gto.basis.load, "Gaussian basis set",
                          "'gth-dzvp' or 'def2-svp'")


def check_pseudo(field: str, value: str, elements: Iterable[str]) -> str:
    """``value`` if PySCF's GTH library has a pseudopotential of that name for every element."""
    from pyscf.pbc import gto as pbcgto

    return _check_library(field, value, elements, pbcgto.pseudo.load, "GTH pseudopotential",
                          "'gth-pade' or 'gth-pbe'")
