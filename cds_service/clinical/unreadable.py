"""Resources that could not be read: what each could have been, and which families must hold back.

A resource whose read fields are unusable is left out of the record (`fhir.reader`), but it is not
absent: it may have been the B12 result or the B12 product a family's conclusion turns on. This
module names it in the words a card uses ("a B12 result") and says which families would otherwise
speak as if it were absent. Those families degrade as the missing-data path does (they do not run
for this request); the families that answer when required data is missing (urgent-neuro-review,
`answers_when_degraded` in the rule registry) always run, and every card names the unreadable
resources.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..fhir.ids import MEDICATION_RESOURCE_TYPES
from ..fhir.reader import ReadFailure
from ..knowledge import concepts as c
from ..knowledge.concepts import MEDICATION_CLASSES
from .record import PatientRecord, UnreadableResource

# --- unreadable resources --------------------------------------------------------------------------
# What an unreadable resource could have been, most specific first: the words a card uses.
_KEY_INPUTS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({c.B12_TOTAL, c.B12_ACTIVE}), "B12 result"),
    (frozenset({c.MMA}), "MMA result"),
    (frozenset({c.HOMOCYSTEINE}), "homocysteine result"),
    (frozenset({c.FOLATE_SERUM, c.FOLATE_RBC}), "folate result"),
    (frozenset({c.IF_ANTIBODY, c.PARIETAL_CELL_ANTIBODY}), "antibody result"),
    (frozenset({c.HAEMOGLOBIN, c.MCV}), "blood count result"),
    (frozenset({c.EGFR}), "kidney function result"),
    (frozenset({c.B12_REPLACEMENT}), "B12 product"),
    (c.FOLATE_THERAPY_CLASSES | {c.LEUCOVORIN}, "folate product"),
    (frozenset({c.NITROUS_OXIDE_DRUG, c.NITROUS_OXIDE_EXPOSURE}), "nitrous oxide exposure"),
    (MEDICATION_CLASSES, "medication the rules read"),
    (c.NEURO_DOMAINS, "neurological finding"),
)
_BY_TYPE = {"Patient": "patient demographics", "Medication": "medication product"}


def key_input_label(concepts: frozenset[str], resource_type: str) -> str:
    """'B12 result', 'B12 product' ...: what an unreadable resource could have been."""
    for wanted, label in _KEY_INPUTS:
        if concepts & wanted:
            return label
    if concepts:
        return "condition or finding the rules read"
    if resource_type in MEDICATION_RESOURCE_TYPES:
        return "medication (product not identified)"
    return _BY_TYPE.get(resource_type, "input the rules read")


def unreadable_resource(failure: ReadFailure) -> UnreadableResource:
    return UnreadableResource(
        ref=failure.ref, resource_type=failure.resource_type,
        key_input=key_input_label(failure.concepts, failure.resource_type),
        field=failure.field, reason=failure.reason, concepts=failure.concepts, is_draft=failure.is_draft,
    )

# Families whose conclusion rests on the *absence* of an input, and the concepts of that input: a
# B12 result or product that could not be read must not let them say "none" (b12-untreated: "no
# replacement"; folate-without-b12: "no B12 measured or given"; mma-testing: "no MMA since";
# b12-testing: "no B12 measured"). Families not listed read only what is present.
ABSENCE_INPUTS: dict[str, frozenset[str]] = {
    "b12-untreated": frozenset({c.B12_REPLACEMENT}),
    "folate-without-b12": frozenset({c.B12_TOTAL, c.B12_ACTIVE, c.B12_REPLACEMENT}),
    "mma-testing": frozenset({c.MMA}),
    "b12-testing": frozenset({c.B12_TOTAL, c.B12_ACTIVE, c.MMA}),
}
def withheld_families(record: PatientRecord, families: Sequence[str]) -> tuple[str, ...]:
    """Families that must not run because an input whose absence they would report was unreadable.

    A medication whose product cannot be identified at all is treated as today's unresolved
    Medication references are: named on every card, without holding a family back.
    """
    if not record.unreadable_resources:
        return ()
    from .rules import degraded_families  # the families that answer from what is there (registry data)

    always = set(degraded_families(families))
    held = []
    for family in families:
        wanted = ABSENCE_INPUTS.get(family)
        if family in always or wanted is None:
            continue
        for item in record.unreadable_resources:
            if item.concepts & wanted:
                held.append(family)
                break
    return tuple(held)
