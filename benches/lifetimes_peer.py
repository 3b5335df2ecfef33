"""Times lifetimes 0.11.3's BG/NBD and Gamma-Gamma fits on the CDNOW sample (the peer
baseline for tiersync's `clv_fit` bench). Run by benches/compare_lifetimes.sh."""
import statistics
import sys
import time
import warnings

from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

warnings.simplefilter("ignore")
repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def timed(fit):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times), statistics.median(times)


summary = load_cdnow_summary(index_col=[0])
money = load_cdnow_summary_data_with_monetary_value()
repeat_buyers = money[money["frequency"] > 0]
bg = timed(lambda: BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"]))
gg = timed(lambda: GammaGammaFitter(penalizer_coef=0.0).fit(repeat_buyers["frequency"], repeat_buyers["monetary_value"]))
print(f"lifetimes BG/NBD CDNOW: {bg[0]:.3f} / {bg[1]:.3f}")
print(f"lifetimes GammaGamma CDNOW: {gg[0]:.3f} / {gg[1]:.3f}")
