"""Orderable keys (docs/contracts.md) the rules propose; codes and wording live in knowledge.

Lab orderables share their key with the analyte concept id (`b12-total`, `mma`, ...); the keys
below are the ones that are not analytes.
"""

from __future__ import annotations

from typing import Final

FBC: Final = "fbc"
CREATININE: Final = "creatinine"
HYDROXOCOBALAMIN_IM: Final = "hydroxocobalamin-im"
HYDROXOCOBALAMIN_IM_NEURO: Final = "hydroxocobalamin-im-neuro"
CYANOCOBALAMIN_ORAL: Final = "cyanocobalamin-oral"
NEUROLOGY_URGENT: Final = "neurology-urgent"  # same-day: spinal cord or red-flag findings
NEUROLOGY_URGENT_NEUROPATHY: Final = "neurology-urgent-neuropathy"  # no spinal-cord or red-flag finding (D7)

# Advice keys: no order, rendered in the card detail from the card wording data.
ADVICE_N2O_ABSTINENCE: Final = "advice-n2o-abstinence"
ADVICE_N2O_ALTERNATIVE: Final = "advice-n2o-alternative"
