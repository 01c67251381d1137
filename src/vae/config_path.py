"""Where the Hydra configs are: the checkout's `conf/` when running from one, else the installed `vae.conf`.

In a checkout (or an editable install) `conf/` is read directly, so an edit there counts at once;
a wheel ships the same files as the package `vae.conf`.
"""

from pathlib import Path

CHECKOUT_CONF = Path(__file__).resolve().parents[2] / "conf"  # <checkout>/conf beside <checkout>/src/vae
IN_CHECKOUT = (CHECKOUT_CONF / "train.yaml").is_file()
CONFIG_PATH = str(CHECKOUT_CONF) if IN_CHECKOUT else "pkg://vae.conf"  # for @hydra.main
