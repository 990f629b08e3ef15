"""The decision rule's false-positive rate and power on simulated studies (vitswin.report.simulate), with more
studies than the test suite's check, for docs/report.md.

    python benchmarks/decision_calibration.py [--studies 20000] [--power-studies 2000]

Writes benchmarks/results/decision-calibration.json and prints the table.
"""

import argparse
import json
from pathlib import Path

from vitswin.report.simulate import calibration_table

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--studies", type=int, default=20000, help="null studies per scenario and seed count")
parser.add_argument("--power-studies", type=int, default=2000, help="studies with a true difference, for the power")
args = parser.parse_args()
rows = calibration_table(args.studies, args.power_studies, seed=1)  # another stream than the test suite's seed 0
path = Path(__file__).parent / "results" / "decision-calibration.json"
path.write_text(json.dumps({"studies": args.studies, "power_studies": args.power_studies, "rows": rows}, indent=1) + "\n")
print("| scenario | seeds | false positives (nominal 5 %) | true difference | power |\n|---|---|---|---|---|")
for row in rows:
    print(
        f"| {row['scenario']} | {row['seeds']} | {100 * row['false_positive_rate']:.2f} % | {row['true_difference']} | "
        f"{100 * row['power']:.1f} % |"
    )
