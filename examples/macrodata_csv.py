"""Write statsmodels' bundled US macroeconomic data (macrodata) as a CSV for rnnkit.

The data ships inside statsmodels (``statsmodels.datasets.macrodata``: quarterly, 1959Q1 to
2009Q3, 203 rows; source: U.S. Bureau of Economic Analysis, Bureau of Labor Statistics and
Federal Reserve, compiled by statsmodels; public domain per statsmodels' notes). rnnkit does
not ship a copy: run this with the ``stats`` extra installed.

    python examples/macrodata_csv.py macro.csv
    rnnkit backtest macro.csv --target unemp --features infl,realint --date quarter
    rnnkit backtest macro.csv --target unemp,infl --features realint --date quarter \
        --horizon 4 --folds 5 --window 8 --cells lstm,gru --loss gaussian --epochs 60

The second command forecasts two targets with one model; docs/forecasting.md has its table.
"""

import csv
import sys

from statsmodels.datasets import macrodata

COLUMNS = ("unemp", "infl", "realint", "realgdp", "cpi")

if __name__ == "__main__":
    df = macrodata.load_pandas().data
    path = sys.argv[1] if len(sys.argv) > 1 else "macro.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["quarter", *COLUMNS])
        for _, r in df.iterrows():
            w.writerow([f"{int(r['year'])}Q{int(r['quarter'])}", *(f"{r[c]:.6g}" for c in COLUMNS)])
