"""The Protect with Cloak dialog: the choices the installed `cloak` lists (`cloak settings --json`),
with the last ones remembered in Krita's settings."""
import json

from krita import Krita
from PyQt5.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                             QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout)

SETTINGS_GROUP, SETTINGS_KEY = "cloak_krita", "last"
SETTINGS_VERSION = 1  # what a saved entry holds; entries of another version are ignored
SOURCES = [("image", "The visible image (flattened)"), ("layer", "The active layer")]
DESTINATIONS = [("layer", "A new layer above (the original stays as it is)"),
                ("document", "A new document"),
                ("file", "A PNG next to the .kra")]


def saved_choices():
    """The choices Krita kept from the last run, or {} when there are none of this version."""
    text = Krita.instance().readSetting(SETTINGS_GROUP, SETTINGS_KEY, "")
    try:
        saved = json.loads(text) if text else {}
    except ValueError:
        return {}
    return saved if isinstance(saved, dict) and saved.get("version") == SETTINGS_VERSION else {}


def save_choices(choices):
    Krita.instance().writeSetting(SETTINGS_GROUP, SETTINGS_KEY,
                                  json.dumps(dict(choices, version=SETTINGS_VERSION)))


def initial_choices(listing, saved):
    """Each saved choice that the listing still offers, else cloak's default."""
    defaults = listing["defaults"]

    def pick(key, offered, default):
        return saved[key] if saved.get(key) in offered else default

    seed = saved.get("seed")
    return {
        "mode": pick("mode", [c["name"] for c in listing["modes"]], defaults["mode"]),
        "strength": pick("strength", [c["name"] for c in listing["strengths"]],
                         defaults["strength"]),
        "preset": pick("preset", [c["name"] for c in listing["presets"]], defaults["preset"]),
        "invisible_at": pick("invisible_at", [c["name"] for c in listing["invisible_at"]],
                             defaults["invisible_at"]),
        "decoy": pick("decoy", listing["decoys"], defaults["decoy"]),
        "seed": seed if isinstance(seed, int) and 0 <= seed < 2**31 else defaults["seed"],
        "target": saved.get("target") if isinstance(saved.get("target"), str) else "",
        "source": pick("source", [s for s, _ in SOURCES], "image"),
        "destination": pick("destination", [d for d, _ in DESTINATIONS], "layer"),
        "cloak": saved.get("cloak") if isinstance(saved.get("cloak"), str) else "",
    }


def _combo(entries, current):
    """A combo box of (name, label) entries with `current` chosen."""
    box = QComboBox()
    for name, label in entries:
        box.addItem(label[:1].upper() + label[1:], name)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


class ProtectDialog(QDialog):
    def __init__(self, listing, choices, cloak, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Protect with Cloak")
        self._listing, self._choices = listing, dict(choices)
        modes = {m["name"]: m for m in listing["modes"]}
        self._needs_target = {name for name, m in modes.items() if m["needs_target"]}
        self.mode = _combo([(m["name"], m["label"]) for m in listing["modes"]], choices["mode"])
        self.strength = _combo([(s["name"], s["label"]) for s in listing["strengths"]],
                               choices["strength"])
        self.preset = _combo([(p["name"], p["label"]) for p in listing["presets"]],
                             choices["preset"])
        self.invisible_at = _combo([(a["name"], a["label"]) for a in listing["invisible_at"]],
                                   choices["invisible_at"])
        self.decoy = _combo([(d, d) for d in listing["decoys"]], choices["decoy"])
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(choices["seed"])
        self.target = QLineEdit(choices["target"])
        self.target.setPlaceholderText("poison: an image of another concept; cloak: a style")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target)
        target_row.addWidget(browse)
        self.source = _combo(SOURCES, choices["source"])
        self.destination = _combo(DESTINATIONS, choices["destination"])

        form = QFormLayout()
        form.addRow("Mode:", self.mode)
        form.addRow("Strength:", self.strength)
        form.addRow("Effort:", self.preset)
        form.addRow("Invisible:", self.invisible_at)
        form.addRow("Decoy style:", self.decoy)
        form.addRow("Target image:", target_row)
        form.addRow("Seed:", self.seed)
        form.addRow("Protect:", self.source)
        form.addRow("Result:", self.destination)
        note = QLabel("Cloak adds a near-invisible change that makes the encoders of generative "
                      "models see something else. It raises the cost of mimicry; noisy upscaling "
                      "or purification can still remove it. Program: " + cloak)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Protect")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.mode.currentIndexChanged.connect(self._update)
        self.target.textChanged.connect(self._update)
        self._update()

    def _update(self):
        mode = self.mode.currentData()
        self.decoy.setEnabled(mode == "cloak" and not self.target.text())

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Target image", self.target.text(),
                                              "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff)")
        if path:
            self.target.setText(path)

    def _accept(self):
        if self.mode.currentData() in self._needs_target and not self.target.text():
            self.target.setFocus()
            self.target.setPlaceholderText("this mode needs a target image")
            return
        self.accept()

    def choices(self):
        return dict(self._choices, mode=self.mode.currentData(),
                    strength=self.strength.currentData(), preset=self.preset.currentData(),
                    invisible_at=self.invisible_at.currentData(),
                    decoy=self.decoy.currentData(), seed=self.seed.value(),
                    target=self.target.text(), source=self.source.currentData(),
                    destination=self.destination.currentData())
