"""What R2 (folate without B12) and R3 Trigger D (folate masking) both need to know.

Which folate products are the subject (draft orders in order hooks, active therapy otherwise), whether
B12 replacement covers the patient, and whether B12 deficiency has been *excluded*
(clinical-reference 4.3): a valid normal total (> 258) or active (> 70) B12 within 12 months, or an
indeterminate B12 with an MMA that is not raised; and in either case no nitrous oxide exposure within
12 months, because N2O inactivates B12 while the level stays normal (Paris 2023; edge case 4).
A stale, invalid (drawn on replacement), uninterpretable or missing B12 leaves deficiency
not excluded (edge cases 1, 7, 8).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..findings import EvidenceItem, ThresholdApplied
from ..record import MedicationExposure, PatientRecord
from .b12_status import B12Assessment, classify_b12
from .common import KnowledgeView, applied, subject_drafts, taken, window_text
from .cover import Cover, b12_cover, cover_evidence, folate_classes, folate_exclusion_reason, replacement_invalidating
from .mma import MmaAssessment, mma_for_b12
from .risk import nitrous_oxide_exposure


@dataclass(frozen=True)
class FolateContext:
    subjects: tuple[MedicationExposure, ...]  # folate therapy the finding is about
    set_aside: tuple[tuple[MedicationExposure, str], ...]  # folate-containing products not counted
    on_drafts: bool  # True in order hooks: the subjects are draft orders
    cover: Cover
    b12: B12Assessment
    mma: MmaAssessment | None  # valid MMA relevant to the index B12
    n2o: tuple[EvidenceItem, ...]
    excluded: bool  # B12 deficiency excluded
    reason: str  # why (not) excluded, one clause for the rationale

    @property
    def applies(self) -> bool:
        """Folate therapy, no B12 cover, deficiency not excluded: the R2 trigger."""
        return bool(self.subjects) and not self.cover.any and not self.excluded

    def b12_evidence(self, kb: KnowledgeView) -> tuple[EvidenceItem, ...]:
        items = list(self.b12.evidence(kb))
        if self.mma is not None:
            items.append(self.mma.evidence(kb))
        return tuple(items) + self.n2o

    def cover_evidence(self, kb: KnowledgeView) -> tuple[EvidenceItem, ...]:
        return cover_evidence(self.cover, kb, drafts_reviewed=self.on_drafts)

    def thresholds(self, kb: KnowledgeView) -> tuple[ThresholdApplied, ...]:
        items = list(self.b12.thresholds)
        items.append(applied(kb, "window.b12-lookback-days", "B12 result look-back", "<="))
        items.append(applied(kb, "window.cover-recent-days", "B12 replacement counts as cover within", "<="))
        if self.mma is not None:
            items.extend(self.mma.thresholds)
        if self.n2o:
            items.append(applied(kb, "window.n2o-exposure-days", "Nitrous oxide exposure within", "<="))
        return tuple(dict.fromkeys(items))


def folate_subjects(
    record: PatientRecord, kb: KnowledgeView, *, order_hook: bool
) -> tuple[list[MedicationExposure], list[tuple[MedicationExposure, str]], bool]:
    """(folate therapy subjects, folate-containing products set aside with the reason, on drafts).

    In an order hook the subjects are the draft orders under review (4.6 D2); on patient-view the
    folate therapy the patient takes now.
    """
    on_drafts = order_hook
    classes = folate_classes(kb)
    if on_drafts:
        candidates = subject_drafts(record, classes)
    else:
        candidates = [m for m in record.medications_in(classes) if taken(m) and m.is_active]
    subjects, set_aside = [], []
    for med in candidates:
        reason = folate_exclusion_reason(med, kb)
        if reason is None:
            subjects.append(med)
        else:
            set_aside.append((med, reason))
    return subjects, set_aside, on_drafts


def deficiency_excluded(
    record: PatientRecord, kb: KnowledgeView, b12: B12Assessment
) -> tuple[bool, str, MmaAssessment | None, tuple[EvidenceItem, ...]]:
    """(excluded, reason, relevant valid MMA, N2O evidence) per clinical-reference 4.3."""
    n2o = nitrous_oxide_exposure(record, kb)
    mma = mma_for_b12(record, kb, b12.index)
    if (
        mma is not None
        and mma.result.effective is not None
        and replacement_invalidating(record, kb, mma.result.effective)
    ):
        mma = None  # MMA falls on treatment: one drawn on replacement cannot exclude deficiency
    if n2o:
        return False, "recent nitrous oxide exposure makes the B12 level unreliable", mma, n2o
    if b12.status == "normal":
        return True, "a recent valid B12 is normal", mma, n2o
    if b12.status == "indeterminate":
        if mma is None:
            return False, "B12 is borderline and no MMA has been measured", mma, n2o
        if mma.interpretation == "not-raised":
            return True, "B12 is borderline but MMA is not raised", mma, n2o
        return False, "B12 is borderline and MMA is raised", mma, n2o
    reasons = {
        "deficient": "B12 is deficient",
        "invalid": "the only recent B12 was drawn on B12 replacement",
        "uninterpretable": "the recent B12 result could not be interpreted",
        "none": f"there is no valid B12 result in the last {window_text(kb, 'window.b12-lookback-days')}",
    }
    return False, reasons[b12.status], mma, n2o


def folate_context(
    record: PatientRecord, kb: KnowledgeView, b12: B12Assessment | None = None, *, order_hook: bool = False
) -> FolateContext:
    subjects, set_aside, on_drafts = folate_subjects(record, kb, order_hook=order_hook)
    b12 = b12 if b12 is not None else classify_b12(record, kb)
    excluded, reason, mma, n2o = deficiency_excluded(record, kb, b12)
    return FolateContext(
        subjects=tuple(subjects),
        set_aside=tuple(set_aside),
        on_drafts=on_drafts,
        cover=b12_cover(record, kb, include_drafts=True),
        b12=b12,
        mma=mma,
        n2o=n2o,
        excluded=excluded,
        reason=reason,
    )
