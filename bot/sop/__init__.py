"""The SOP definition: a data file in the Permenpan-RB 35/2012 table format."""

from bot.sop.loader import SopError, SopRegistry, load_sop, parse_sop
from bot.sop.schema import Action, CoverLetter, Outcome, Role, Sop, Step

__all__ = [
    "Action",
    "CoverLetter",
    "Outcome",
    "Role",
    "Sop",
    "SopError",
    "SopRegistry",
    "Step",
    "load_sop",
    "parse_sop",
]
