"""The options of a comparison run, its constants and the columns of the tables it writes."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ComparisonError
from pipeline.research.within import CI_METHODS, COVARIATES, ORDERED_TRENDS

LEVELS = ("between", "within")
#: Indicators that describe the recording or the role rule rather than the process.
NOT_PROCESS = frozenset({"duration", "role_confidence"})
#: Chosen by bench/calibration.py (docs/research_calibration.md): false-positive rate <= .07 under every shared
#: trend shape (linear, saturating, step, U-shaped), AR(1) errors to phi .8, 10-40 clients x 3-20 sessions.
DEFAULT_CI = "cluster"
DEFAULT_COVARIATES: tuple[str, ...] = ("session_order",)
#: Covariates that need each session's position in the client's course (refused where it is unknown).
NEEDS_ORDER = frozenset({"session_number", "client_trend", *ORDERED_TRENDS})
#: Changes within this of the reliable-change criterion count as reaching it (scores are decimals).
RC_TOLERANCE = 1e-9
DUPLICATE_RULES = ("refuse", "latest")
TRAJECTORY_SERIES = ("self_report", "all")
#: Above this many session x indicator x measure pairs the within-client Spearman (ranks) is skipped unless asked.
SPEARMAN_WITHIN_MAX_PAIRS = 250_000


@dataclass(frozen=True)
class CompareOptions:
    """Options of a comparison run.

    Attributes
    ----------
    instruments : tuple of str
        Instrument keys to compare (empty: all imported).
    scales : tuple of str
        Scale names (empty: all).
    indicators : tuple of str
        ``name`` or ``name:role`` (role ``therapist``, ``client`` or ``session``); empty: every process
        indicator stored.
    levels : tuple of str
        ``between`` and/or ``within``.
    min_n : int
        Smallest (effective) n for which a correlation is estimated; also the fewest clients for the
        within-client model.
    strain_quantile : float
        A strain signal is an indicator at or beyond this quantile of all sessions in its strain
        direction, and beyond the median (so ties at zero never count).
    rating_quantile : float
        Without a published cutoff an alliance rating is *high* at or above this quantile of the
        sample and *low* at or below ``1 - rating_quantile``.
    covariates : tuple of str
        Trend control of the within-client estimate. Default ``session_order``: one fixed effect per session
        position, so a shared trend of any shape is removed (:func:`pipeline.research.within.ordered_within`);
        ``spline``: a natural spline of session position; or the linear controls ``session_number``,
        ``days_since_first`` and/or ``client_trend`` (each client's own linear trend removed). Every control
        but ``days_since_first`` needs the sessions' order: a client with an undated session has none, and the
        within-client estimate is then refused with that reason.
    ci : {"cluster", "bootstrap", "model"}
        Interval of the within-client estimate (default cluster-robust).
    bootstrap : int
        Client resamples for ``ci="bootstrap"``.
    seed : int
        Seed of the bootstrap.
    allow_mixed_versions : bool
        Compare sessions processed with different markers versions (refused by default).
    duplicates : {"refuse", "latest"}
        Several scores of one measure on one session: refuse (default) or keep the latest import's.
    trajectories : {"self_report", "all"}
        Series written to ``client_trajectories``: self-report only (default; indicator series are in the
        ``client_series`` view) or indicators too (a batch step at scale).
    spearman_within : bool or None
        Also the rank version of the repeated-measures correlation (a window over every pair: the slowest
        step at scale). None: only when there are at most :data:`SPEARMAN_WITHIN_MAX_PAIRS` pairs.
    include_contradicted : bool
        Also compare indicators whose evidence is ``contradicted`` (left out by default; naming one in
        ``indicators`` without this is refused).
    """

    instruments: tuple[str, ...] = ()
    scales: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    levels: tuple[str, ...] = LEVELS
    min_n: int = 5
    strain_quantile: float = 0.8
    rating_quantile: float = 0.8
    covariates: tuple[str, ...] = DEFAULT_COVARIATES
    ci: str = DEFAULT_CI
    bootstrap: int = 999
    seed: int = 0
    allow_mixed_versions: bool = False
    duplicates: str = "refuse"
    trajectories: str = "self_report"
    spearman_within: bool | None = None
    include_contradicted: bool = False

    def check(self) -> None:
        """Raise ComparisonError for an option value that is not allowed."""
        bad = set(self.levels) - set(LEVELS)
        if bad:
            raise ComparisonError(f"levels {sorted(bad)} unknown; use {list(LEVELS)}")
        bad = set(self.covariates) - set(COVARIATES) - {"client_trend", *ORDERED_TRENDS}
        if bad:
            raise ComparisonError(f"covariates {sorted(bad)} unknown; use "
                                  f"{[*ORDERED_TRENDS, *COVARIATES, 'client_trend']}")
        ordered = set(self.covariates) & set(ORDERED_TRENDS)
        if ordered and (len(self.covariates) > 1 or self.ci != "cluster"):
            raise ComparisonError(f"covariate {sorted(ordered)[0]} stands alone with the cluster-robust interval "
                                  "(--ci cluster); --ci bootstrap|model and combined covariates go with the linear "
                                  "trend controls (session_number, days_since_first, client_trend), which do not "
                                  "hold under a nonlinear shared trend (docs/research_calibration.md)")
        if self.ci not in CI_METHODS:
            raise ComparisonError(f"ci {self.ci!r} unknown; use one of {list(CI_METHODS)}")
        if self.duplicates not in DUPLICATE_RULES:
            raise ComparisonError(f"duplicates {self.duplicates!r} unknown; use one of {list(DUPLICATE_RULES)}")
        if self.trajectories not in TRAJECTORY_SERIES:
            raise ComparisonError(f"trajectories {self.trajectories!r} unknown; use {list(TRAJECTORY_SERIES)}")


RESULT_COLUMNS = ["indicator", "speaker_role", "instrument", "scale", "timepoint", "level", "n", "n_clients",
                  "spearman_rho", "spearman_ci_low", "spearman_ci_high", "spearman_p", "spearman_q",
                  "pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p", "pearson_q", "note",
                  "n_sessions", "method", "estimate", "estimate_ci_low", "estimate_ci_high", "estimate_p",
                  "estimate_q", "ci_method", "covariates", "markers_version", "lexicons_version"]

TRAJECTORY_COLUMNS = ["client_id", "series", "name", "speaker_role", "timepoint", "occasion", "session_id",
                      "on_date", "value", "baseline", "change_from_baseline", "reliable_change"]
