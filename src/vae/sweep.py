"""Sweep summaries: after `python src/train.py -m ...`, every run's overrides and test metrics side by side.

At the end of a multirun, `SweepSummary` (a Hydra callback, `hydra.callbacks` in conf/train.yaml)
writes summary.csv, summary.md, summary.png and best_config.yaml into the sweep folder: one row per
run, sorted
by test NLL, and the NLL plotted against the swept values. A failed run stops Hydra's sweep
before its end; `python -m vae.sweep <sweep folder>` then summarises the runs that finished.
Imports only the standard library and OmegaConf at startup: Hydra loads it for every run.
"""

import csv
import json
import logging
import math
import shutil
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

MAIN_METRIC = "test/nll"  # -log p(x) in nats, lower is better
METRICS = ["test/nll", "test/elbo", "test/rec", "test/kl", "test/bpd", "test/active_units"]


def parse_override(text: str) -> tuple[str, str]:
    """"model=conv" -> ("model", "conv"); "+trainer.x=3" keeps its "+"; "~key" has the value ""."""
    key, _, value = text.partition("=")
    return key, value


def read_runs(sweep_dir: Path) -> list[dict]:
    """Each job folder of a sweep as {"run", "overrides": {key: value}, "results": results.json or {}}."""
    runs = []
    for job in sweep_dir.iterdir():
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        overrides = dict(parse_override(text) for text in OmegaConf.load(overrides_file))
        results_file = job / "results.json"
        results = json.loads(results_file.read_text()) if results_file.is_file() else {}
        runs.append({"run": job.name, "overrides": overrides, "results": results})
    return sorted(runs, key=lambda run: (len(run["run"]), run["run"]))  # job numbers: 2 before 10


def swept_keys(runs: list[dict]) -> list[str]:
    """The override keys whose values differ between runs, in the order they were given."""
    keys = list(dict.fromkeys(key for run in runs for key in run["overrides"]))
    return [key for key in keys if len({run["overrides"].get(key) for run in runs}) > 1]


def summary_rows(runs: list[dict]) -> list[dict]:
    """One row per run (run, swept values, metrics, all overrides), sorted by MAIN_METRIC; runs without it last."""
    swept = swept_keys(runs)
    rows = []
    for run in runs:
        row = {"run": run["run"], **{key: run["overrides"].get(key, "") for key in swept}}
        row |= {metric: run["results"].get(metric) for metric in METRICS}
        row["overrides"] = ",".join(f"{k}={v}" if v else k for k, v in run["overrides"].items())
        rows.append(row)
    return sorted(rows, key=lambda row: (row[MAIN_METRIC] is None, row[MAIN_METRIC] or 0.0))


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def markdown_table(rows: list[dict]) -> str:
    def shown(name: str, value) -> str:
        if value is None:
            return "failed" if name == MAIN_METRIC else ""
        if isinstance(value, float):
            return f"{value:.4f}" if name.endswith("bpd") else f"{value:.2f}"
        return str(value).replace("|", "\\|")

    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(shown(name, row[name]) for name in names) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def plot_metric(rows: list[dict], swept: list[str], path: Path, title: str, metric: str = MAIN_METRIC) -> None:
    """`metric` against the swept value with most settings (numeric first), one line per setting of the others."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [row for row in rows if row[metric] is not None]
    if not rows:
        log.warning("No run of the sweep has %s: no plot", metric)
        return
    swept = swept or ["run"]  # a sweep of one setting: one point per run
    numeric = [key for key in swept if all(as_number(str(row[key])) is not None for row in rows)]
    x_key = max(numeric or swept, key=lambda key: len({row[key] for row in rows}))
    others = [key for key in swept if key != x_key]
    categories = list(dict.fromkeys(str(row[x_key]) for row in rows))

    def x_of(row: dict) -> float:
        return as_number(str(row[x_key])) if x_key in numeric else categories.index(str(row[x_key]))

    fig = Figure(figsize=(6, 4), dpi=100)
    canvas, ax = FigureCanvasAgg(fig), fig.subplots()
    lines: dict[str, list[dict]] = {}
    for row in rows:
        lines.setdefault(", ".join(f"{key}={row[key]}" for key in others), []).append(row)
    for label, members in lines.items():
        members.sort(key=x_of)
        ax.plot([x_of(r) for r in members], [r[metric] for r in members], "o-", label=label or None)
    if x_key in numeric:
        ax.set_xticks(sorted({x_of(row) for row in rows}))  # a tick at each swept value
    else:
        ax.set_xticks(range(len(categories)), categories)
    if others:
        ax.legend(fontsize="small")
    ax.set(xlabel=x_key, ylabel=f"{metric} (nats, lower is better)", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    canvas.print_png(str(path))


def write_best_config(runs: list[dict], sweep_dir: Path) -> None:
    """best_config.yaml: the composed config of the run with the best val/elbo, the objective sweeps select on."""
    scored = [run for run in runs if run["results"].get("val/elbo") is not None]
    if scored:
        best = max(scored, key=lambda run: run["results"]["val/elbo"])
        shutil.copyfile(sweep_dir / best["run"] / ".hydra" / "config.yaml", sweep_dir / "best_config.yaml")


def summarize(sweep_dir: Path) -> list[dict]:
    """Write summary.csv, summary.md, summary.png and best_config.yaml into `sweep_dir`; returns the rows, best first."""
    runs = read_runs(sweep_dir)
    if not runs:
        log.warning("No runs under %s to summarise", sweep_dir)
        return []
    rows = summary_rows(runs)
    write_csv(rows, sweep_dir / "summary.csv")
    (sweep_dir / "summary.md").write_text(f"# Sweep {sweep_dir}\n\nSorted by {MAIN_METRIC}.\n\n" + markdown_table(rows))
    plot_metric(rows, swept_keys(runs), sweep_dir / "summary.png", title=str(sweep_dir))
    write_best_config(runs, sweep_dir)
    brief = [{name: value for name, value in row.items() if name != "overrides"} for row in rows]
    log.info("Sweep summary (%d runs, best first): %s\n%s", len(rows), sweep_dir / "summary.md", markdown_table(brief))
    return rows


class SweepSummary(Callback):
    """Summarise the sweep when a Hydra multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        summarize(Path(config.hydra.sweep.dir))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python -m vae.sweep <sweep folder, e.g. outputs/multirun/DATE/TIME>")
    summarize(Path(sys.argv[1]))
