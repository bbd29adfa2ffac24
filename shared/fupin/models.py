"""Imports every domain's tables so the metadata is complete for Alembic and relationship strings."""

from fupin import jobs as _jobs  # noqa: F401
from fupin.areas import models as _areas  # noqa: F401
from fupin.audit import models as _audit  # noqa: F401
from fupin.auth import models as _auth  # noqa: F401
from fupin.base import Base
from fupin.households import models as _households  # noqa: F401
from fupin.ledger import models as _ledger  # noqa: F401
from fupin.loans import models as _loans  # noqa: F401
from fupin.subsidies import models as _subsidies  # noqa: F401

metadata = Base.metadata
