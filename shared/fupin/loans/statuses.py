"""The statuses of loans, loan applications and credit certificates, as stored (`String` columns): one
StrEnum each, like the other domains' statuses, so a misspelt status is a name error, not a silent miss."""

from __future__ import annotations

from enum import StrEnum


class LoanStatus(StrEnum):
    current = "current"
    overdue = "overdue"
    repaid_on_time = "repaid_on_time"
    repaid_late = "repaid_late"


class ApplicationStatus(StrEnum):
    submitted = "submitted"
    village_reviewed = "village_reviewed"
    station_reviewed = "station_reviewed"
    coop_assessed = "coop_assessed"
    county_reviewed = "county_reviewed"  # enterprise applications
    approved = "approved"
    rejected = "rejected"
    disbursed = "disbursed"
    overdue = "overdue"
    repaid = "repaid"


class CertificateStatus(StrEnum):
    village_reviewed = "village_reviewed"
    issued = "issued"
