"""Tools > Scripts > Protect with Cloak...: the dialog, then the run with a progress dialog that
can cancel it, then the measured figures, or the one line that says what went wrong."""
from krita import Extension, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QDialog, QFileDialog, QMessageBox, QProgressDialog

from .cloak_cli import CloakError, find_cloak, one_line, settings_listing, summary
from .dialog import ProtectDialog, initial_choices, save_choices, saved_choices
from .protect import ProtectJob

ACTION = "cloak_protect"


def progress_text(fraction, eta):
    if fraction >= 1:
        return "Measuring what the protection achieved…"
    return f"Protecting with Cloak: {int(fraction * 100)}%, about {eta // 60}:{eta % 60:02d} left"


class CloakExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self._job = None  # the run in progress, kept alive until it ends

    def setup(self):
        pass

    def createActions(self, window):
        action = window.createAction(ACTION, "Protect with Cloak…", "tools/scripts")
        action.setToolTip("Protect the artwork from generative-AI mimicry before publishing it")
        action.triggered.connect(self.protect)

    def protect(self):
        window = Krita.instance().activeWindow()
        parent = window.qwindow() if window else None
        try:
            self._protect(parent)
        except Exception as e:  # one line in a message box, never a traceback
            message = str(e) if isinstance(e, CloakError) else f"{type(e).__name__}: {e}"
            QMessageBox.warning(parent, "Cloak", one_line(message))

    def _locate(self, parent, saved):
        """The cloak program: the saved or PATH one, or one the artist points to."""
        while True:
            try:
                return find_cloak(saved.get("cloak", ""))
            except CloakError as e:
                box = QMessageBox(QMessageBox.Warning, "Cloak", str(e), QMessageBox.Cancel, parent)
                locate = box.addButton("Locate cloak…", QMessageBox.AcceptRole)
                box.exec_()
                if box.clickedButton() is not locate:
                    return None
                path, _ = QFileDialog.getOpenFileName(parent, "The cloak program")
                if not path:
                    return None
                saved["cloak"] = path

    def _protect(self, parent):
        if self._job is not None:
            raise CloakError("Cloak is already protecting an image: wait for it or cancel it")
        doc = Krita.instance().activeDocument()
        if doc is None:
            raise CloakError("open a document first: Cloak protects the image you are working on")
        saved = saved_choices()
        cloak = self._locate(parent, saved)
        if cloak is None:
            return
        listing = settings_listing(cloak)
        dialog = ProtectDialog(listing, initial_choices(listing, saved), cloak, parent)
        if dialog.exec_() != QDialog.Accepted:
            return
        choices = dialog.choices()
        save_choices(choices)
        node = None
        if choices["source"] == "layer":
            node = doc.activeNode()
            if node is None:
                raise CloakError("choose a layer first: there is no active layer")
        job = ProtectJob(cloak, doc, node, choices, parent)
        job.start()  # what is wrong up front raises here, before any progress dialog
        self._job = job
        bar = QProgressDialog(progress_text(0, 0), "Cancel", 0, 1000, parent)
        bar.setWindowTitle("Cloak")
        bar.setWindowModality(Qt.WindowModal)
        bar.setMinimumDuration(0)
        bar.setAutoClose(False)
        bar.setAutoReset(False)

        def ended():
            bar.close()
            self._job = None

        def on_progress(fraction, eta):
            bar.setValue(int(fraction * 1000))
            bar.setLabelText(progress_text(fraction, eta))

        def on_finished(result):
            ended()
            if "document" in result and Krita.instance().activeWindow():
                Krita.instance().activeWindow().addView(result["document"])
            where = f" Written to {result['file']}." if "file" in result else ""
            QMessageBox.information(parent, "Cloak", summary(result["report"], listing) + where)

        def on_failed(message):
            ended()
            QMessageBox.warning(parent, "Cloak", message)

        job.progress.connect(on_progress)
        job.finished.connect(on_finished)
        job.failed.connect(on_failed)
        job.cancelled.connect(ended)
        bar.canceled.connect(job.cancel)
        bar.show()
