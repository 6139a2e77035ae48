"""Utterance coders (fit/predict, scikit-learn style) and the bundle the product loads.

One :class:`UtteranceCoder` per decision: the therapist's main behaviour, the client's talk type, and each
subtype (question open/closed, reflection simple/complex, input kind), each a :class:`CodeFeaturizer` and a
logistic regression. :class:`ProcessCoder` chains them (main code, then the subtype coder of that code) and is
what ships: a joblib file whose SHA-256 is checked against its model card before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from pipeline.codes.context import CodingUtterance, Context, contexts
from pipeline.codes.encoder import EncodedTexts
from pipeline.codes.features import CodeFeaturizer, Encoder, FeatureOptions
from pipeline.errors import ModelChecksumError, ModelMissingError

THERAPIST_CODES = ("question", "reflection", "therapist_input", "other")
CLIENT_CODES = ("change", "neutral", "sustain")
SUBTYPES = {
    "question": ("open", "closed"),
    "reflection": ("simple", "complex"),
    "therapist_input": ("information", "advice", "negotiation", "options"),
}
ARTEFACT_DIR = Path(__file__).with_name("artefacts")
ARTEFACT_NAME = "process_coder.joblib"
CARD_NAME = "process_coder.card.json"


@dataclass(frozen=True)
class CoderOptions:
    """A candidate: its features, the regularisation ``c`` and whether classes are weighted to balance."""

    features: FeatureOptions = FeatureOptions()
    c: float = 2.0
    balanced: bool = True
    max_iter: int = 3000


class UtteranceCoder:
    """One decision: ``fit(contexts, labels, encoder)``, ``predict_proba(contexts, encoder)``."""

    def __init__(self, options: CoderOptions = CoderOptions()) -> None:
        self.options = options
        self.featurizer = CodeFeaturizer(options.features)
        self.model = LogisticRegression(
            C=options.c,
            class_weight="balanced" if options.balanced else None,
            max_iter=options.max_iter,
        )

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.model.classes_.tolist())

    def fit(self, items: Sequence[Context], labels: Sequence[str], encoder: Encoder | None) -> UtteranceCoder:
        self.featurizer.fit(items)
        self.model.fit(self.featurizer.transform(items, encoder), np.asarray(labels))
        return self

    def predict_proba(self, items: Sequence[Context], encoder: Encoder | None) -> np.ndarray:
        if not items:
            return np.zeros((0, len(self.classes)))
        return self.model.predict_proba(self.featurizer.transform(items, encoder))

    def predict(self, items: Sequence[Context], encoder: Encoder | None) -> list[str]:
        proba = self.predict_proba(items, encoder)
        return [self.classes[i] for i in proba.argmax(axis=1)] if len(items) else []


@dataclass(frozen=True)
class UtteranceCode:
    """The coder's verdict on one utterance: ``code`` with its probability, ``subtype`` ('' where none)."""

    index: int
    role: str
    code: str
    probability: float
    subtype: str
    subtype_probability: float | None


@dataclass
class ProcessCoder:
    """The shipped bundle: one coder per role and one per subtype family, with their model card."""

    therapist: UtteranceCoder
    client: UtteranceCoder
    subtypes: dict[str, UtteranceCoder]
    card: dict = field(default_factory=dict)

    def code(self, utterances: Sequence[CodingUtterance], encoder: Encoder) -> list[UtteranceCode]:
        """Code every therapist and client utterance (others are skipped), in order."""
        items = contexts(utterances)
        encoder = EncodedTexts(encoder, ["", *(u.text for u in utterances)])  # every context field is one of these
        out: dict[int, UtteranceCode] = {}
        for role, coder in (("therapist", self.therapist), ("client", self.client)):
            idx = [i for i, c in enumerate(items) if c.role == role]
            if not idx:
                continue
            proba = coder.predict_proba([items[i] for i in idx], encoder)
            for i, p in zip(idx, proba, strict=True):
                k = int(p.argmax())
                out[i] = UtteranceCode(i, role, coder.classes[k], float(p[k]), "", None)
        for code, coder in self.subtypes.items():
            idx = [i for i, v in out.items() if v.code == code]
            if not idx:
                continue
            proba = coder.predict_proba([items[i] for i in idx], encoder)
            for i, p in zip(idx, proba, strict=True):
                k = int(p.argmax())
                v = out[i]
                out[i] = UtteranceCode(v.index, v.role, v.code, v.probability, coder.classes[k], float(p[k]))
        return [out[i] for i in sorted(out)]

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unversioned"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_coder(coder: ProcessCoder, folder: Path = ARTEFACT_DIR) -> Path:
    """Write the bundle and its card (with the bundle's SHA-256); returns the bundle's path."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARTEFACT_NAME
    payload = {"therapist": coder.therapist, "client": coder.client, "subtypes": coder.subtypes}
    joblib.dump(payload, path, compress=3)
    card = dict(coder.card, artefact=ARTEFACT_NAME, artefact_sha256=sha256_file(path))
    (folder / CARD_NAME).write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_card(folder: Path = ARTEFACT_DIR) -> dict:
    path = folder / CARD_NAME
    if not path.is_file():
        raise ModelMissingError(f"the process coder's model card {path} is missing: reinstall the package")
    return json.loads(path.read_text(encoding="utf-8"))


def load_coder(folder: Path = ARTEFACT_DIR) -> ProcessCoder:
    """Load the shipped bundle after checking its SHA-256 against the card (a changed file is refused)."""
    import joblib

    card = read_card(folder)
    path = folder / card["artefact"]
    if not path.is_file():
        raise ModelMissingError(f"the process coder {path} is missing: reinstall the package")
    actual = sha256_file(path)
    if actual != card["artefact_sha256"]:
        raise ModelChecksumError(f"the process coder {path} has sha256 {actual}, its card says "
                                 f"{card['artefact_sha256']}: reinstall the package or rebuild it")
    payload = joblib.load(path)
    return ProcessCoder(payload["therapist"], payload["client"], payload["subtypes"], card)


def options_dict(options: CoderOptions) -> dict:
    return asdict(options)
