"""Disentanglement metrics: how well single latent dimensions capture single factors of the data.

Pure functions of posterior means `codes` (N, D) and the integer factor indices `factors` (N, K) that made
each image (data=shapes), as numpy arrays. Each follows its paper; where a paper leaves an estimator
open, the choice is that of disentanglement_lib (Locatello et al. 2019, "Challenging Common Assumptions
in the Unsupervised Learning of Disentangled Representations"), said at each function. Factors that
take a single value carry no information and are left out. All scores lie in [0, 1], 1 is best
(`dci_informativeness` can dip below 0 for codes worse than predicting the mean).
"""

import numpy as np

# scikit-learn is the `metrics` extra (pip install 'vae-zoo[metrics]'): imported where it is used, so the package
# imports without it; check_metrics refuses mig and dci with one line when it is missing


def varying(factors: np.ndarray) -> np.ndarray:
    """The factor columns that take more than one value. (N, K) -> (N, K')"""
    return factors[:, [k for k in range(factors.shape[1]) if len(np.unique(factors[:, k])) > 1]]


def discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each code dimension cut into `bins` equal-width bins over its range. (N, D) float -> (N, D) int"""
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins)
        out[:, d] = np.digitize(codes[:, d], edges[1:-1])  # 0 .. bins - 1
    return out


def mutual_information(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """I(z_d; v_k) in nats for every code dimension and factor, from their joint histogram. -> (D, K)"""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(v, z) for v in factors.T] for z in discrete_codes.T])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", Eq. 5):
    the mean over factors of (I(z_j*; v_k) - I(z_j'; v_k)) / H(v_k), the gap between the two code
    dimensions most informative about v_k.

    Chen et al. estimate I(z_j; v_k) from samples of q(z|x); here, as in disentanglement_lib, from a
    20-bin histogram of the posterior means, so the figure depends on `bins`. codes (N, D), D >= 2.
    """
    factors = varying(factors)
    info = mutual_information(discretize(codes, bins), factors)  # (D, K)
    top_two = np.sort(info, axis=0)[-2:]  # (2, K)
    from sklearn.metrics import mutual_info_score

    entropy = np.array([mutual_info_score(v, v) for v in factors.T])  # H(v_k) = I(v_k; v_k)
    return float(np.mean((top_two[1] - top_two[0]) / entropy))


def entropy_base(p: np.ndarray, axis: int) -> np.ndarray:
    """Entropy of the distributions along `axis`, in base of their length (so it lies in [0, 1])."""
    n = p.shape[axis]
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=axis) / np.log(n)


def dci_scores(importance: np.ndarray) -> tuple[float, float]:
    """Disentanglement and completeness from an importance matrix R (D, K) (Eastwood & Williams 2018, Sec. 3).

    Disentanglement: sum_d rho_d (1 - H_K(P_d.)) with P_dk = R_dk / sum_k R_dk and rho_d = sum_k R_dk / sum R;
    completeness: the mean over factors of 1 - H_D(P~_.k) with P~_dk = R_dk / sum_d R_dk.
    """
    importance = np.abs(importance) + 1e-12  # a dimension no regressor uses is spread evenly, not 0/0
    per_code = importance / importance.sum(axis=1, keepdims=True)  # (D, K)
    rho = importance.sum(axis=1) / importance.sum()  # (D,)
    disentanglement = float((rho * (1 - entropy_base(per_code, axis=1))).sum())
    per_factor = importance / importance.sum(axis=0, keepdims=True)  # (D, K)
    completeness = float((1 - entropy_base(per_factor, axis=0)).mean())
    return disentanglement, completeness


def dci(
    codes: np.ndarray, factors: np.ndarray, n_train: int | None = None, seed: int = 0, trees: int = 50
) -> dict[str, float]:
    """DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled Representations").

    One regressor per factor predicts the standardised factor from the codes: scikit-learn's gradient
    boosted trees (as disentanglement_lib; the paper uses lasso and random forests), whose impurity
    importances form R (D, K). Fitted on `n_train` random examples (default: 80%), scored on the rest.
    Informativeness is the paper's prediction error, the normalised RMSE on the held-out codes, reported
    as 1 - NRMSE so that, like D and C, 1 is best and 0 is no better than predicting the mean.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    order = np.random.default_rng(seed).permutation(len(codes))  # the held-out part: a random one
    codes, factors = codes[order], varying(factors)[order].astype(np.float64)
    factors = (factors - factors.mean(axis=0)) / factors.std(axis=0)
    n_train = n_train or int(0.8 * len(codes))
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    errors = []
    for k in range(factors.shape[1]):
        model = GradientBoostingRegressor(n_estimators=trees, random_state=seed)
        model.fit(codes[:n_train], factors[:n_train, k])
        importance[:, k] = model.feature_importances_
        residual = model.predict(codes[n_train:]) - factors[n_train:, k]
        errors.append(np.sqrt(np.mean(residual**2)) / factors[n_train:, k].std())
    disentanglement, completeness = dci_scores(importance)
    return {
        "dci_disentanglement": disentanglement,
        "dci_completeness": completeness,
        "dci_informativeness": float(1 - np.mean(errors)),
    }


def factor_vae_votes(
    codes: np.ndarray, factors: np.ndarray, n_votes: int, batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Votes (D, K) of Kim & Mnih's majority-vote classifier: fix factor k at the value of a random example,
    draw `batch_size` examples sharing it, and vote (the dimension with the least normalised variance, k)."""
    votes = np.zeros((codes.shape[1], factors.shape[1]), dtype=np.int64)
    for _ in range(n_votes):
        k = rng.integers(factors.shape[1])
        value = factors[rng.integers(len(factors)), k]
        members = np.flatnonzero(factors[:, k] == value)
        batch = codes[rng.choice(members, batch_size)]  # with replacement, like sampling the generator
        votes[np.argmin(batch.var(axis=0, ddof=1)), k] += 1
    return votes


def factor_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    batch_size: int = 64,
    n_train: int = 500,
    n_eval: int = 500,
    active_threshold: float = 0.01,
    seed: int = 0,
) -> float:
    """The FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", Sec. 4).

    Codes are divided by their standard deviation over the data; dimensions whose means barely vary
    (variance <= `active_threshold`, Burda et al.'s active units) are pruned. A majority-vote classifier
    maps each dimension to the factor it most often wins for, on `n_train` votes; the score is its
    accuracy on `n_eval` fresh votes (held out, as in disentanglement_lib). Chance is 1 / K.
    """
    factors = varying(factors)
    active = codes.var(axis=0) > active_threshold
    if not active.any():
        return 0.0
    normalised = codes[:, active] / codes[:, active].std(axis=0)
    rng = np.random.default_rng(seed)
    train = factor_vae_votes(normalised, factors, n_train, batch_size, rng)  # (D', K)
    held_out = factor_vae_votes(normalised, factors, n_eval, batch_size, rng)
    chosen = train.argmax(axis=1)  # each dimension's factor
    return float(held_out[np.arange(len(chosen)), chosen].sum() / n_eval)
