"""One protect run inside Krita: the visible image or a layer out to a PNG in a temporary folder,
the installed `cloak` on it in a QProcess (Krita stays responsive), and the result back as a new
layer above, a new document, or a PNG next to the .kra. The original is never changed; a run that
fails or is cancelled leaves no layer and no file behind."""
import json
import os

from krita import InfoObject, Krita
from PyQt5.QtCore import QDir, QObject, QProcess, QTemporaryDir, QTimer, pyqtSignal

from .cloak_cli import CloakError, one_line, progress_of, protect_arguments

DESTINATIONS = ("layer", "document", "file")
INPUT = "in.png"  # the exported pixels, in the temporary folder where cloak runs


def layer_name(choices):
    """The new layer's name: the settings that made it."""
    name = f"Cloak {choices['mode']} {choices['strength']} {choices['preset']} seed {choices['seed']}"
    if choices.get("target"):
        return name + f" target {os.path.basename(choices['target'])}"
    return name + (f" decoy {choices['decoy']}" if choices["mode"] == "cloak" else "")


def colour_space(doc):
    return doc.colorModel(), doc.colorDepth(), doc.colorProfile()


def free_name(folder, stem):
    """`stem-cloaked.png` in `folder`, numbered -2, -3 ... when taken, as the command line does."""
    for n in range(1, 1000):
        path = os.path.join(folder, f"{stem}-cloaked{'' if n == 1 else f'-{n}'}.png")
        if not os.path.exists(path):
            return path
    raise CloakError(f"{folder}: no free name for {stem}-cloaked.png")


class ProtectJob(QObject):
    """Protects `node` (a layer) or, when it is None, the visible image of `doc`. `start()` raises
    CloakError for what is wrong up front; then exactly one of `finished` (a dict: "report", the
    cloak JSON report, and "layer", "document" or "file"), `failed` (one line) or `cancelled`."""

    progress = pyqtSignal(float, int)  # fraction done, seconds left
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()

    def __init__(self, cloak, doc, node, choices, parent=None):
        super().__init__(parent)
        if choices["destination"] not in DESTINATIONS:
            raise CloakError(f"unknown destination {choices['destination']!r}")
        self._cloak, self._doc, self._node, self._choices = cloak, doc, node, choices
        self._label = f"'{node.name()}'" if node else f"'{doc.name() or 'the image'}'"
        self._temp = None
        self._process = None
        self._output = None
        self._stdout, self._stderr, self._partial = "", "", ""
        self._cancelling = False

    def start(self):
        doc, node = self._doc, self._node
        model, depth, _ = colour_space(doc)
        if model not in ("RGBA", "GRAYA") or depth not in ("U8", "U16"):
            raise CloakError(f"Cloak protects 8- and 16-bit RGB or greyscale images, not {model} "
                             f"{depth}: convert a copy (Image > Convert Image Color Space)")
        if node is None:
            self._rect = (0, 0, doc.width(), doc.height())
        else:
            bounds = node.bounds()
            if bounds.isEmpty():
                raise CloakError(f"{self._label} is empty: there is nothing to protect")
            self._rect = (bounds.x(), bounds.y(), bounds.width(), bounds.height())
        if self._choices["destination"] == "file":
            if not doc.fileName():
                raise CloakError("save the document first: the protected PNG is written next to it")
            folder, base = os.path.split(doc.fileName())
            self._output = free_name(folder, os.path.splitext(base)[0])
        self._temp = QTemporaryDir(os.path.join(QDir.tempPath(), "cloak-krita-XXXXXX"))
        if not self._temp.isValid():
            raise CloakError(f"cannot make a temporary folder in {QDir.tempPath()}")
        try:
            self._export(os.path.join(self._temp.path(), INPUT))
        except Exception:
            self._temp.remove()
            raise
        if self._output is None:
            self._output = os.path.join(self._temp.path(), "out.png")
        p = self._process = QProcess(self)
        p.setWorkingDirectory(self._temp.path())
        p.readyReadStandardOutput.connect(self._read_stdout)
        p.readyReadStandardError.connect(self._read_stderr)
        p.finished.connect(self._done)
        p.errorOccurred.connect(self._error)
        p.start(self._cloak, protect_arguments(self._choices, INPUT, self._output))

    def cancel(self):
        """Stops cloak (it stops at its next step); `cancelled` follows."""
        if self._process is not None and self._process.state() != QProcess.NotRunning:
            self._cancelling = True
            self._process.terminate()
            QTimer.singleShot(5000, self._kill)

    def _kill(self):
        if self._process.state() != QProcess.NotRunning:
            self._process.kill()

    def _export(self, path):
        """The pixels to protect as a PNG at the document's depth, with its profile and alpha."""
        doc, node, krita = self._doc, self._node, Krita.instance()
        batch = doc.batchmode(), krita.batchmode()
        doc.setBatchmode(True)  # no export dialog (a layer's save asks Krita's own setting)
        krita.setBatchmode(True)
        try:
            doc.waitForDone()
            config = InfoObject()
            config.setProperty("compression", 1)  # a file read once: speed over size
            config.setProperty("forceSRGB", False)  # the document's own values and profile
            if node is None:
                ok = doc.exportImage(path, config)
            else:
                node.save(path, doc.xRes(), doc.yRes(), config, node.bounds())
                ok = os.path.isfile(path)
        finally:
            doc.setBatchmode(batch[0])
            krita.setBatchmode(batch[1])
        if not ok:
            raise CloakError(f"Krita could not export {self._label} as PNG")

    def _read_stdout(self):
        self._stdout += bytes(self._process.readAllStandardOutput()).decode("utf-8", "replace")

    def _read_stderr(self):
        self._partial += bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            p = progress_of(line)
            if p:
                self.progress.emit(*p)
            else:
                self._stderr += line + "\n"

    def _error(self, error):
        if error == QProcess.FailedToStart:
            self._end()
            self.failed.emit(f"{self._cloak}: cannot start it ({self._process.errorString()})")

    def _done(self, code, status):
        self._read_stdout()
        self._read_stderr()
        try:
            if self._cancelling:
                if code == 0 and self._choices["destination"] == "file":
                    os.remove(self._output)  # finished as it was cancelled: the artist said no
                self._end()
                self.cancelled.emit()
                return
            if status != QProcess.NormalExit or code != 0:
                message = one_line(self._stderr + self._partial)
                if message.startswith(INPUT + ":"):
                    message = self._label + message[len(INPUT):]
                raise CloakError(message)
            report = json.loads([l for l in self._stdout.splitlines() if l.startswith("{")][-1])
            result = {"report": report}
            if self._choices["destination"] == "file":
                result["file"] = self._output
            else:
                pixels = self._read_result()
                key = "layer" if self._choices["destination"] == "layer" else "document"
                result[key] = getattr(self, "_new_" + key)(pixels)
            self._end()
            self.finished.emit(result)
        except Exception as e:  # one line for the artist, never a traceback
            self._end()
            self.failed.emit(one_line(str(e)) if isinstance(e, CloakError) else f"{type(e).__name__}: {e}")

    def _end(self):
        if self._temp is not None:
            self._temp.remove()

    def _read_result(self):
        """Cloak's output as pixel data: the document's colour space, as exported."""
        res = Krita.instance().openDocument(self._output)
        if res is None:
            raise CloakError(f"Krita could not read Cloak's result {self._output}")
        try:
            res.setBatchmode(True)
            space = res.colorModel(), res.colorDepth(), res.colorProfile()
            if space != colour_space(self._doc):
                raise CloakError(f"Cloak's result came back as {' '.join(space)}, not as "
                                 f"{' '.join(colour_space(self._doc))}")
            res.waitForDone()
            return res.pixelData(0, 0, res.width(), res.height())
        finally:
            res.close()

    def _new_layer(self, pixels):
        doc, node = self._doc, self._node
        x, y, w, h = self._rect
        layer = doc.createNode(layer_name(self._choices), "paintlayer")
        layer.setPixelData(pixels, x, y, w, h)
        if node is None:
            doc.rootNode().addChildNode(layer, None)  # on top of everything
        else:
            node.parentNode().addChildNode(layer, node)  # right above its source
        doc.refreshProjection()
        return layer

    def _new_document(self, pixels):
        doc = self._doc
        _, _, w, h = self._rect
        new = Krita.instance().createDocument(w, h, f"{doc.name() or 'Untitled'} (Cloak)",
                                              doc.colorModel(), doc.colorDepth(),
                                              doc.colorProfile(), doc.resolution())
        layer = new.topLevelNodes()[0]
        layer.setName(layer_name(self._choices))
        layer.setPixelData(pixels, 0, 0, w, h)
        new.refreshProjection()
        return new
