"""Sweep summaries: after `python src/train.py -m ...`, every run's overrides and test metrics side by side.

`SweepSummary` (a Hydra callback, `hydra.callbacks` in conf/train.yaml) writes summary.csv,
summary.md, summary.png and best_config.yaml into the sweep folder as each job starts and ends and
when the multirun ends: one row per run, sorted by test NLL when every NLL comes from the same
number k of importance samples (else by the best val/elbo, and the summary says why), and the NLL
plotted against the swept values. `python -m vae.sweep <sweep folder>` redoes them.

A run that fails does not stop the sweep (`sweep_member`): its one-line error goes to error.txt in
its folder and to the summary's `error` column, the next run starts, and the command exits 1 at the
end with a line naming the failed runs and their overrides.
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

from vae.errors import SweepFailed, UserExit
from vae.files import atomic_write

log = logging.getLogger(__name__)

MAIN_METRIC = "test/nll"  # -log p(x) in nats, lower is better
K = "k"  # the column of importance samples behind each test/nll (results.json: test/nll_samples)
SELECTION_METRIC = "val/elbo"  # the best epoch's validation ELBO, higher is better: what sweeps select on
METRICS = ["test/nll", K, "val/elbo", "test/elbo", "test/rec", "test/kl", "test/bpd", "test/active_units"]
SOURCE = {K: "test/nll_samples"}  # a column whose results.json key differs from its name
JUDGED = [  # metrics=[...]: columns shown where some run has them
    "test/mig", "test/dci_disentanglement", "test/dci_completeness", "test/dci_informativeness", "test/factor_vae",
    "test/fid", "test/fid_reference", "test/precision", "test/recall",
]  # fmt: skip


def parse_override(text: str) -> tuple[str, str]:
    """"model=conv" -> ("model", "conv"); "+trainer.x=3" keeps its "+"; "~key" has the value ""."""
    key, _, value = text.partition("=")
    return key, value


JOBS = ".jobs"  # <sweep>/.jobs/<job>.yaml: each job's overrides, recorded as it starts
ERROR = "error.txt"  # <sweep>/<job>/error.txt: why the run failed, one line


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def failed_value(sweeper: DictConfig) -> float:
    """What a failed run returns to the sweeper: the worst value for its direction, so Optuna's search
    moves away from it. Not NaN: the Optuna sweeper (hydra-optuna-sweeper 1.2, optuna 2.10) ends the
    whole search with a traceback on a NaN."""
    return -math.inf if str(sweeper.get("direction", "minimize")).lower().endswith("maximize") else math.inf


def sweep_member(task):
    """Wrap a Hydra task function (outside `exits_on_user_error`) so that in a -m sweep a failed run is
    recorded in its folder and the sweep goes on; a single run is left as it is.

    A user error (UserExit) is recorded in its own words; a bug as its type and message, with its
    traceback in the run's log. SIGTERM (RunStopped) and Ctrl-C still stop the whole sweep.
    """
    import functools

    @functools.wraps(task)
    def wrapped(cfg):
        if not in_multirun():
            return task(cfg)
        from hydra.core.hydra_config import HydraConfig

        error_file = Path(HydraConfig.get().runtime.output_dir) / ERROR
        error_file.unlink(missing_ok=True)  # a rerun into the same sweep folder
        try:
            return task(cfg)
        except UserExit as exc:
            message = str(exc)
        except Exception as exc:
            log.exception("This run of the sweep failed:")
            message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        log.error("This run of the sweep failed (the sweep goes on): %s", message)
        with atomic_write(error_file) as file:
            file.write(message + "\n")
        return failed_value(HydraConfig.get().sweeper)

    return wrapped


def read_runs(sweep_dir: Path) -> list[dict]:
    """Each job folder of a sweep as {"run", "overrides": {key: value}, "results": results.json or {},
    "error": the line of its error.txt or None}."""
    runs = []
    for job in sweep_dir.iterdir():
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():  # a job refused before it wrote its folder: what it was started with
            overrides_file = sweep_dir / JOBS / f"{job.name}.yaml"
        if not job.is_dir() or not overrides_file.is_file():
            continue
        overrides = dict(parse_override(text) for text in OmegaConf.load(overrides_file))
        results = read_results(job / "results.json")
        error = (job / ERROR).read_text().strip() if (job / ERROR).is_file() else None
        runs.append({"run": job.name, "overrides": overrides, "results": results, "error": error})
    return sorted(runs, key=lambda run: (len(run["run"]), run["run"]))  # job numbers: 2 before 10


def read_results(path: Path) -> dict:
    """A run's results.json, or {} when it has none (failed, still running) or it cannot be read."""
    if not path.is_file():
        return {}
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.warning("Skipping %s: %s", path, err)
        return {}
    return results if isinstance(results, dict) else {}


def swept_keys(runs: list[dict]) -> list[str]:
    """The override keys whose values differ between runs, in the order they were given."""
    keys = list(dict.fromkeys(key for run in runs for key in run["overrides"]))
    return [key for key in keys if len({run["overrides"].get(key) for run in runs}) > 1]


def summary_rows(runs: list[dict]) -> tuple[list[dict], str]:
    """One row per run (run, swept values, metrics, all overrides), best first, and a sentence on the order.

    Ranked by MAIN_METRIC when every NLL comes from the same k: a bound that tightens as k grows
    (Burda et al. 2016) ranks runs of different k by k as much as by model, so those are ranked by
    SELECTION_METRIC instead. Runs without the ranking metric come last.
    """
    swept = swept_keys(runs)
    judged = [metric for metric in JUDGED if any(metric in run["results"] for run in runs)]
    any_failed = any(run.get("error") for run in runs)
    rows = []
    for run in runs:
        row = {"run": run["run"], **{key: run["overrides"].get(key, "") for key in swept}}
        row |= {metric: run["results"].get(SOURCE.get(metric, metric)) for metric in METRICS + judged}
        if any_failed:
            row["error"] = run.get("error")
        row["overrides"] = overrides_text(run["overrides"])
        rows.append(row)
    ks = sorted({row[K] for row in rows if row[MAIN_METRIC] is not None}, key=str)
    if len(ks) <= 1:
        rows.sort(key=lambda row: (row[MAIN_METRIC] is None, row[MAIN_METRIC] or 0.0))
        k = f"k = {ks[0]} importance samples" if ks and ks[0] is not None else "k unknown"
        return rows, f"Sorted by {MAIN_METRIC} (-log p(x) in nats from {k}; lower is better)."
    rows.sort(key=lambda row: (row[SELECTION_METRIC] is None, -(row[SELECTION_METRIC] or 0.0)))
    shown = ", ".join(str(k) for k in ks)
    return rows, (
        f"Not ranked by {MAIN_METRIC}: its values come from different numbers of importance samples "
        f"(k = {shown}), and the bound tightens as k grows. Sorted by {SELECTION_METRIC} (the best epoch's, "
        f"higher is better); `python src/eval.py ckpt_path=<run>/checkpoints/best.ckpt nll_samples=N` "
        f"with one N for every run makes the NLLs comparable."
    )


def write_csv(rows: list[dict], path: Path) -> None:
    with atomic_write(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def markdown_table(rows: list[dict]) -> str:
    def shown(name: str, value, row: dict) -> str:
        if value is None:
            if name == MAIN_METRIC:
                return "failed" if row.get("error") else "no results"  # or still running
            return ""
        if isinstance(value, float):
            return f"{value:.4f}" if name.endswith("bpd") else f"{value:.3f}" if name in JUDGED and "fid" not in name else f"{value:.2f}"
        return str(value).replace("|", "\\|")

    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(shown(name, row[name], row) for name in names) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def plot_metric(rows: list[dict], swept: list[str], path: Path, title: str, metric: str = MAIN_METRIC):
    """`metric` against the swept value with most settings (numeric first), one line per setting of the others.

    Numeric values spanning a factor of 8 or more (latent sizes 2..64, learning rates) get a log axis.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [row for row in rows if row[metric] is not None]
    if not rows:
        log.warning("No run of the sweep has %s: no plot", metric)
        return None
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
        values = sorted({x_of(row) for row in rows})
        if values[0] > 0 and values[-1] / values[0] >= 8:
            ax.set_xscale("log", base=2 if all(math.log2(v).is_integer() for v in values) else 10)
            ax.minorticks_off()
        ax.set_xticks(values, [f"{v:g}" for v in values])  # a tick at each swept value
    else:
        ax.set_xticks(range(len(categories)), categories)
    if others:
        ax.legend(fontsize="small")
    better = "lower" if metric == MAIN_METRIC else "higher"
    ax.set(xlabel=x_key, ylabel=f"{metric} (nats, {better} is better)", title=title)
    ax.title.set_fontsize("medium")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as file:
        canvas.print_png(file)
    return fig


def plot_title(swept: list[str], rows: list[dict], metric: str, sweep_dir: Path) -> str:
    """What was swept and what is plotted: "latent x model: test/nll (k = 100)\nsweep 2024-05-01/12-00-00"."""
    what = " x ".join(swept) if swept else "repeated runs"
    ks = {row[K] for row in rows if row[metric] is not None}
    k = f" (k = {ks.pop()})" if metric == MAIN_METRIC and len(ks) == 1 else ""
    return f"{what}: {metric}{k}\nsweep {'/'.join(sweep_dir.resolve().parts[-2:])}"


def write_best_config(runs: list[dict], sweep_dir: Path) -> None:
    """best_config.yaml: the composed config of the run with the best val/elbo, the objective sweeps select on."""
    scored = [run for run in runs if run["results"].get("val/elbo") is not None]
    if scored:
        best = max(scored, key=lambda run: run["results"]["val/elbo"])
        shutil.copyfile(sweep_dir / best["run"] / ".hydra" / "config.yaml", sweep_dir / "best_config.yaml")


def overrides_text(overrides: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" if v else k for k, v in overrides.items())


def failures_message(sweep_dir: Path, shown: int = 3) -> str | None:
    """One line naming the failed runs of a sweep, their overrides and errors, or None when none failed."""
    runs = read_runs(sweep_dir)
    failed = [run for run in runs if run["error"]]
    if not failed:
        return None
    named = "; ".join(f"run {run['run']} ({overrides_text(run['overrides'])}): {run['error']}" for run in failed[:shown])
    more = f"; and {len(failed) - shown} more (each run's {ERROR})" if len(failed) > shown else ""
    return f"{len(failed)} of {len(runs)} runs of the sweep failed: {named}{more}; the others: {sweep_dir / 'summary.md'}"


def summarize(sweep_dir: Path, quiet: bool = False) -> list[dict]:
    """Write summary.csv, summary.md, summary.png and best_config.yaml into `sweep_dir`; returns the rows, best first."""
    runs = read_runs(sweep_dir)
    if not runs:
        log.warning("No runs under %s to summarise", sweep_dir)
        return []
    rows, order = summary_rows(runs)
    swept = swept_keys(runs)
    write_csv(rows, sweep_dir / "summary.csv")
    with atomic_write(sweep_dir / "summary.md") as file:
        file.write(f"# Sweep {sweep_dir}\n\n{order} `{K}`: importance samples behind {MAIN_METRIC}.\n\n")
        file.write(markdown_table(rows))
    metric = MAIN_METRIC if order.startswith("Sorted by " + MAIN_METRIC) else SELECTION_METRIC
    plot_metric(rows, swept, sweep_dir / "summary.png", plot_title(swept, rows, metric, sweep_dir), metric)
    write_best_config(runs, sweep_dir)
    brief = [{name: value for name, value in row.items() if name not in ("overrides", "error")} for row in rows]
    if not quiet:
        log.info("Sweep summary (%d runs, best first): %s\n%s\n%s", len(rows), sweep_dir / "summary.md", order,
                 markdown_table(brief))  # fmt: skip
    return rows


SWEEPER_SETUP = ("Study name:", "Storage:", "Sampler:", "Directions:")  # the Optuna sweeper's set-up lines


def quiet_sweeper() -> None:
    """A sweep's output without the Optuna sweeper's set-up lines and without Optuna's own coloured lines (their
    ANSI codes would land in a log file): Optuna's warnings still reach the console and train.log, plain."""
    logging.getLogger("hydra_plugins.hydra_optuna_sweeper._impl").addFilter(
        lambda record: not str(record.msg).startswith(SWEEPER_SETUP)
    )
    try:
        import optuna
    except ImportError:  # the optuna extra is not installed: nothing of it to quieten
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()  # its colourised stderr handler
    optuna.logging.enable_propagation()


class SweepSummary(Callback):
    """Summarise the sweep as each of its jobs starts and ends and when the multirun ends; then, where runs
    failed, end the command with one line naming them (SweepFailed: exit 1)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        quiet_sweeper()  # before Hydra builds the sweeper

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN:  # the job's overrides, kept outside its folder until it starts
            record = Path(config.hydra.sweep.dir) / JOBS / f"{config.hydra.sweep.subdir}.yaml"
            record.parent.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(OmegaConf.create(list(config.hydra.overrides.task)), record)
        self.summarize_job(config)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        self.summarize_job(config)

    def summarize_job(self, config: DictConfig) -> None:
        from hydra.types import RunMode

        if config.hydra.mode == RunMode.MULTIRUN:
            try:
                summarize(Path(config.hydra.sweep.dir), quiet=True)
            except Exception as err:  # a summary so far must never fail a training job
                log.warning("Sweep summary not updated: %s", err)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            summarize(sweep_dir)
        finally:  # a summary that cannot be written still leaves the exit status to say a run failed
            message = failures_message(sweep_dir)
        if message is not None:  # a BaseException: Hydra reports a callback's Exception as a warning only
            raise SweepFailed(message)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python -m vae.sweep <sweep folder, e.g. outputs/multirun/DATE/TIME>")
    summarize(Path(sys.argv[1]))
