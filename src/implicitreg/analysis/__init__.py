"""What the chapters compute from finished runs: interval statistics (:mod:`.stats`, whose
names are re-exported here), loss-landscape tools (:mod:`.landscape`), the modified
flows of backward error analysis (:mod:`.flows`) and the central flow of GD at the edge
of stability (:mod:`.central_flow`)."""
from .stats import *  # noqa: F401,F403
from .stats import __all__  # noqa: F401
