"""Matrix coverage audit (矩阵检查).

The rules are in :mod:`hub.audit.rules` (pure); this package re-exports them.
"""

from hub.audit.rules import (
    AccountFacts,
    AccountVerdict,
    AuditResult,
    Change,
    Comparison,
    Finding,
    FindingChange,
    OrgChange,
    OrgFacts,
    OrgVerdict,
    Requirement,
    Rollup,
    SpokespersonFacts,
    account_exists,
    compare,
    evaluate,
)

__all__ = [
    "AccountFacts",
    "AccountVerdict",
    "AuditResult",
    "Change",
    "Comparison",
    "Finding",
    "FindingChange",
    "OrgChange",
    "OrgFacts",
    "OrgVerdict",
    "Requirement",
    "Rollup",
    "SpokespersonFacts",
    "account_exists",
    "compare",
    "evaluate",
]
