from tests.loans.conftest import world  # noqa: F401  (the bank test's township, coop and staff)
