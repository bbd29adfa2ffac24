"""Every kind of job the worker runs, in one table: the kind (a `domain.verb` constant of its domain), the
handler that does it, and for a scheduled kind the cron entries whose due-date functions say which runs
should exist by now. From a kind, "go to definition" on its handler or its due function leads to the code;
nothing registers itself by import.

Kind strings are persisted in `job_run.kind` and `job_run.key`: renaming one needs an Alembic revision that
renames the stored rows (as tidy0100 did for `loans.mark_overdue` → `loan.mark_overdue`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fupin import jobs, platform_jobs
from fupin.assessment import jobs as assessment
from fupin.dividends import jobs as dividends
from fupin.dividends.service import MATURE_KIND, PAY_KIND
from fupin.loans import bank_files
from fupin.loans import jobs as loans
from fupin.subsidies import jobs as subsidies
from fupin_worker.jobs import assessment as assessment_cron
from fupin_worker.jobs import dividends as dividends_cron
from fupin_worker.jobs import loans as loans_cron
from fupin_worker.jobs import platform as platform_cron
from fupin_worker.jobs import subsidies as subsidies_cron
from fupin_worker.schedule import Entry


@dataclass(frozen=True)
class Kind:
    kind: str
    handler: jobs.Handler
    schedule: tuple[Entry, ...] = ()  # cron entries that create runs of this kind; none: requested only


KINDS: tuple[Kind, ...] = (
    # platform
    Kind(platform_jobs.AUDIT_VERIFY, platform_jobs.verify_audit_chains,
         (Entry("audit chain verification, daily", platform_cron.daily_audit_verify),)),
    # loans
    Kind(loans.MARK_OVERDUE, loans.mark_overdue_job,
         (Entry("loans: mark overdue loans, daily", loans_cron.daily_overdue),)),
    Kind(bank_files.APPLY_FILE, bank_files.apply_file),
    # repayment-rate assessment: the scheduled fan-out requests one run per county
    Kind(assessment.SCHEDULE, assessment.fan_out, (
        Entry("assessment: monthly repayment-rate monitoring, year to date", assessment_cron.monthly_due),
        Entry("assessment: annual repayment-rate assessment, January 5", assessment_cron.annual_due),
    )),
    Kind(assessment.MONTHLY, assessment.monthly),
    Kind(assessment.ANNUAL, assessment.annual),
    Kind(assessment.MANUAL, assessment.manual),
    # interest subsidies: the scheduled plan requests each township's phase run
    Kind(subsidies.PLAN, subsidies.plan, (
        Entry("subsidy allocation and pre-allocation, quarter start", subsidies_cron.quarter_start_due),
        Entry("subsidy settlement of the previous quarter, 1st–5th of the quarter", subsidies_cron.settlement_due),
    )),
    Kind(subsidies.ALLOCATION, subsidies.allocate),
    Kind(subsidies.PREALLOCATION, subsidies.preallocate),
    Kind(subsidies.SETTLEMENT, subsidies.settle),
    # dividends
    Kind(PAY_KIND, dividends.pay_dividend_run),
    Kind(MATURE_KIND, dividends.mark_matured,
         (Entry("dividend holdings maturity, daily", dividends_cron.daily_maturity),)),
)

HANDLERS: dict[str, jobs.Handler] = {k.kind: k.handler for k in KINDS}
SCHEDULE: tuple[Entry, ...] = tuple(entry for k in KINDS for entry in k.schedule)
