"""Metrics as a two-column console table, as train, eval and their logs show them."""


def format_table(metrics: dict) -> str:
    """A two-column console table; lists (KL per dimension) on one line."""
    width = max(len(name) for name in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
    for name, value in metrics.items():
        if isinstance(value, list):
            shown = " ".join(f"{v:.2f}" for v in value)
        elif isinstance(value, float):
            shown = f"{value:.4f}" if name.endswith("bpd") else f"{value:.2f}"
        else:
            shown = str(value)
        lines.append(f"{name:<{width}}  {shown}")
    return "\n".join(lines)
