"""Register the subsidy job handlers in the test process, as the worker's HANDLER_MODULES does."""

import fupin.subsidies.jobs  # noqa: F401
