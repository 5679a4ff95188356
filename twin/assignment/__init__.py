"""Static traffic assignment for quick what-ifs: TNTP readers and user-equilibrium solvers.

See :mod:`twin.assignment.tntp` for the file readers and
:mod:`twin.assignment.static_ue` for the Frank-Wolfe family of solvers.
"""

from twin.assignment.static_ue import METHODS, UEResult, solve_ue
from twin.assignment.tntp import (
    TntpFlow,
    TntpNetwork,
    parse_tntp_flow,
    parse_tntp_net,
    parse_tntp_trips,
    read_tntp_flow,
    read_tntp_net,
    read_tntp_trips,
)

__all__ = [
    "METHODS",
    "UEResult",
    "solve_ue",
    "TntpFlow",
    "TntpNetwork",
    "parse_tntp_flow",
    "parse_tntp_net",
    "parse_tntp_trips",
    "read_tntp_flow",
    "read_tntp_net",
    "read_tntp_trips",
]
