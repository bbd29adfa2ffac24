"""Imports every domain's tables so the metadata is complete for Alembic and relationship strings."""

from fupin import jobs as _jobs  # noqa: F401
from fupin.areas import models as _areas  # noqa: F401
from fupin.assessment import models as _assessment  # noqa: F401
from fupin.audit import models as _audit  # noqa: F401
from fupin.auth import models as _auth  # noqa: F401
from fupin.base import Base
from fupin.dividends import models as _dividends  # noqa: F401
from fupin.documents import models as _documents  # noqa: F401
from fupin.households import models as _households  # noqa: F401
from fupin.idempotency import models as _idempotency  # noqa: F401
from fupin.ledger import models as _ledger  # noqa: F401
from fupin.loans import models as _loans  # noqa: F401
from fupin.monitoring import models as _monitoring  # noqa: F401
from fupin.pairing import models as _pairing  # noqa: F401
from fupin.projects import models as _projects  # noqa: F401
from fupin.subsidies import models as _subsidies  # noqa: F401

metadata = Base.metadata
