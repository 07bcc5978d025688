"""The vocabulary shared by the knowledge files, the normaliser and the rules.

Knowledge value sets map external codes (LOINC, RxNorm, ATC, SNOMED CT, ICD-10-CM) onto these
concept ids; rules only ever speak in concept ids. Keeping the ids in one module means a typo in a
knowledge file is caught by the loader (it checks every concept against this list) instead of
silently never matching.
"""

from __future__ import annotations

from typing import Final

# --- Laboratory analytes (canonical unit in brackets, see knowledge/units.json) -------------------
B12_TOTAL: Final = "b12-total"  # pmol/L
B12_ACTIVE: Final = "b12-active"  # holotranscobalamin, pmol/L
MMA: Final = "mma"  # umol/L
HOMOCYSTEINE: Final = "homocysteine"  # umol/L
FOLATE_SERUM: Final = "folate-serum"  # nmol/L
FOLATE_RBC: Final = "folate-rbc"  # nmol/L
HAEMOGLOBIN: Final = "haemoglobin"  # g/L
MCV: Final = "mcv"  # fL
EGFR: Final = "egfr"  # mL/min/{1.73_m2}
IF_ANTIBODY: Final = "intrinsic-factor-antibody"  # qualitative
PARIETAL_CELL_ANTIBODY: Final = "parietal-cell-antibody"  # qualitative

LAB_ANALYTES: Final = frozenset(
    {
        B12_TOTAL,
        B12_ACTIVE,
        MMA,
        HOMOCYSTEINE,
        FOLATE_SERUM,
        FOLATE_RBC,
        HAEMOGLOBIN,
        MCV,
        EGFR,
        IF_ANTIBODY,
        PARIETAL_CELL_ANTIBODY,
    }
)

# Analytes where a lower value is the abnormal one (for the rest, e.g. MMA and homocysteine, higher is):
# two results at the same time are never decided by their order in the request, the worse one counts.
LOWER_IS_ABNORMAL: Final = frozenset({EGFR, HAEMOGLOBIN, FOLATE_SERUM, FOLATE_RBC})

# --- Medication classes --------------------------------------------------------------------------
METFORMIN: Final = "metformin"
PPI: Final = "proton-pump-inhibitor"
H2RA: Final = "h2-receptor-antagonist"
OTHER_B12_LOWERING_DRUG: Final = "other-b12-lowering-drug"  # colchicine, topiramate, pregabalin
NITROUS_OXIDE_DRUG: Final = "nitrous-oxide"
FOLIC_ACID: Final = "folic-acid"
LEVOMEFOLATE: Final = "levomefolate"
LEUCOVORIN: Final = "leucovorin"
B12_REPLACEMENT: Final = "b12-replacement"  # cyanocobalamin, hydroxocobalamin, methylcobalamin
METHOTREXATE: Final = "methotrexate"
HORMONAL_CONTRACEPTIVE: Final = "hormonal-contraceptive"

MEDICATION_CLASSES: Final = frozenset(
    {
        METFORMIN,
        PPI,
        H2RA,
        OTHER_B12_LOWERING_DRUG,
        NITROUS_OXIDE_DRUG,
        FOLIC_ACID,
        LEVOMEFOLATE,
        LEUCOVORIN,
        B12_REPLACEMENT,
        METHOTREXATE,
        HORMONAL_CONTRACEPTIVE,
    }
)
FOLATE_THERAPY_CLASSES: Final = frozenset({FOLIC_ACID, LEVOMEFOLATE})
RISK_MEDICATION_CLASSES: Final = frozenset({METFORMIN, PPI, H2RA, OTHER_B12_LOWERING_DRUG})

# --- Conditions and findings ---------------------------------------------------------------------
# Neurological findings, grouped by the red-flag domains of clinical-reference section 4.1.
NEURO_SENSORY: Final = "neuro-sensory"  # neuropathy, paraesthesia, numbness
NEURO_GAIT: Final = "neuro-gait"  # ataxia, gait/balance disorder, falls
NEURO_WEAKNESS: Final = "neuro-weakness"
NEURO_BLADDER_BOWEL: Final = "neuro-bladder-bowel"
NEURO_COGNITIVE: Final = "neuro-cognitive"
NEURO_SCD_MYELOPATHY: Final = "neuro-scd-myelopathy"
NEURO_OPTIC: Final = "neuro-optic"
NEURO_CRAMP: Final = "neuro-cramp"  # a symptom, not a red flag

NEURO_DOMAINS: Final = frozenset(
    {
        NEURO_SENSORY,
        NEURO_GAIT,
        NEURO_WEAKNESS,
        NEURO_BLADDER_BOWEL,
        NEURO_COGNITIVE,
        NEURO_SCD_MYELOPATHY,
        NEURO_OPTIC,
        NEURO_CRAMP,
    }
)
RED_FLAG_DOMAINS: Final = frozenset(
    {NEURO_GAIT, NEURO_WEAKNESS, NEURO_BLADDER_BOWEL, NEURO_COGNITIVE, NEURO_SCD_MYELOPATHY}
)

# Risk factors (NICE NG239 list, clinical-reference 4.1).
PERNICIOUS_ANAEMIA: Final = "pernicious-anaemia"
ATROPHIC_GASTRITIS: Final = "atrophic-gastritis"
GASTRIC_SURGERY: Final = "gastric-surgery"
ILEAL_DISEASE: Final = "ileal-resection-or-disease"  # ileal resection, ileal Crohn's
COELIAC: Final = "coeliac-disease"
VEGAN_DIET: Final = "vegan-or-vegetarian-diet"
ALCOHOL_USE_DISORDER: Final = "alcohol-use-disorder"
AUTOIMMUNE_ENDOCRINE: Final = "autoimmune-endocrine"  # T1DM, autoimmune thyroid
NITROUS_OXIDE_EXPOSURE: Final = "nitrous-oxide-exposure"

RISK_CONDITION_CLASSES: Final = frozenset(
    {
        PERNICIOUS_ANAEMIA,
        ATROPHIC_GASTRITIS,
        GASTRIC_SURGERY,
        ILEAL_DISEASE,
        COELIAC,
        VEGAN_DIET,
        ALCOHOL_USE_DISORDER,
        AUTOIMMUNE_ENDOCRINE,
        NITROUS_OXIDE_EXPOSURE,
    }
)

# Diagnoses and states the rules read.
B12_DEFICIENCY: Final = "b12-deficiency"
FOLATE_DEFICIENCY: Final = "folate-deficiency"
MACROCYTOSIS: Final = "macrocytosis"
PREGNANCY: Final = "pregnancy"
CKD: Final = "chronic-kidney-disease"
DIABETIC_NEUROPATHY: Final = "diabetic-neuropathy"

CONDITION_CLASSES: Final = (
    NEURO_DOMAINS
    | RISK_CONDITION_CLASSES
    | frozenset({B12_DEFICIENCY, FOLATE_DEFICIENCY, MACROCYTOSIS, PREGNANCY, CKD, DIABETIC_NEUROPATHY})
)

ALL_CONCEPTS: Final = LAB_ANALYTES | MEDICATION_CLASSES | CONDITION_CLASSES

# How people name the code systems the knowledge uses (card evidence, `b12-cds knowledge`).
CODE_SYSTEM_LABELS: dict[str, str] = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://www.whocc.no/atc": "ATC",
}
