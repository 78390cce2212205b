// GIMP 2.10 plug-in: Filters > Protect > Cloak... Protects the active drawable (within the
// selection) with the Cloak library, as one undo step.
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cloak/core/error.h"
#include "cloak/engine/openmp_wait.h"
#include "cloak/engine/protect.h"
#include "cloak/io/image_io.h"
#include "cloak/pipeline/protect_file.h"
#include "cloak/pipeline/surrogates.h"

namespace {

constexpr const char* kProc = "plug-in-cloak-protect";
constexpr const char* kBinary = "cloak";

// Settings remembered between runs (gimp_set_data): plain data only. Choices are indices into the
// library's settings tables (cloak/engine/settings.h), defaults the library's. `version` says which
// layout GIMP kept, so that settings saved by an older plug-in still load.
constexpr gint32 kValuesVersion = 1;
struct Values {
  gint32 version = kValuesVersion;
  gint32 mode = static_cast<gint32>(cloak::ProtectSettings{}.mode);
  gint32 strength = static_cast<gint32>(cloak::ProtectSettings{}.strength);
  gint32 preset = static_cast<gint32>(cloak::ProtectSettings{}.preset);
  gint32 seed = 0;
  char target[1024] = "";
};
// What the first plug-in saved, before `version`.
struct ValuesV0 {
  gint32 mode, strength, preset, seed;
  char target[1024];
};

// The last settings GIMP kept for this procedure, in either layout; defaults when there are none.
Values saved_values() {
  Values v;
  const gint size = gimp_get_data_size(kProc);
  if (size == sizeof(Values)) {
    Values saved;
    gimp_get_data(kProc, &saved);
    if (saved.version == kValuesVersion) v = saved;
  } else if (size == sizeof(ValuesV0)) {
    ValuesV0 old;
    gimp_get_data(kProc, &old);
    v.mode = old.mode;
    v.strength = old.strength;
    v.preset = old.preset;
    v.seed = old.seed;
    std::memcpy(v.target, old.target, sizeof v.target);
    v.target[sizeof v.target - 1] = '\0';
  }
  return v;
}

// "0 guard, 1 cloak, 2 poison": a table's choices as the PDB's integer arguments.
template <class Choice, std::size_t N>
std::string pdb_choices(const Choice (&table)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i)
    out += (i ? ", " : "") + std::to_string(i) + " " + table[i].name;
  return out;
}

std::string capitalised(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// A combo box of a table's choices, as the library describes them, valued by index.
template <class Choice, std::size_t N>
GtkWidget* choice_combo(const Choice (&table)[N]) {
  std::vector<std::string> labels;
  for (const auto& c : table) labels.push_back(capitalised(cloak::describe(c.value)));
  std::vector<const gchar*> pointers;
  for (const auto& l : labels) pointers.push_back(l.c_str());
  return gimp_int_combo_box_new_array(static_cast<gint>(N), pointers.data());
}

void query() {
  static const std::string modes = pdb_choices(cloak::kModes) + " (needs target)",
                           strengths = pdb_choices(cloak::kStrengths),
                           presets = pdb_choices(cloak::kPresets);
  static GimpParamDef args[] = {
      {GIMP_PDB_INT32, const_cast<gchar*>("run-mode"),
       const_cast<gchar*>("The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }")},
      {GIMP_PDB_IMAGE, const_cast<gchar*>("image"), const_cast<gchar*>("Input image")},
      {GIMP_PDB_DRAWABLE, const_cast<gchar*>("drawable"),
       const_cast<gchar*>("Drawable to protect")},
      {GIMP_PDB_INT32, const_cast<gchar*>("mode"), const_cast<gchar*>(modes.c_str())},
      {GIMP_PDB_INT32, const_cast<gchar*>("strength"), const_cast<gchar*>(strengths.c_str())},
      {GIMP_PDB_INT32, const_cast<gchar*>("preset"), const_cast<gchar*>(presets.c_str())},
      {GIMP_PDB_INT32, const_cast<gchar*>("seed"), const_cast<gchar*>("Random seed")},
      {GIMP_PDB_STRING, const_cast<gchar*>("target"),
       const_cast<gchar*>("Target image file (poison anchor or cloak decoy), or empty")},
  };
  gimp_install_procedure(
      kProc, "Protect artwork from generative-AI mimicry",
      "Adds a near-invisible perturbation that makes the image encoders of generative "
      "models see something else. Only selected pixels change; alpha is kept.",
      "Cloak developers", "Apache-2.0", "2026", "_Cloak...", "RGB*, GRAY*", GIMP_PLUGIN,
      G_N_ELEMENTS(args), 0, args, nullptr);
  gimp_plugin_menu_register(kProc, "<Image>/Filters/Protect");
}

GtkWidget* add_row(GtkWidget* table, int row, const char* label, GtkWidget* widget) {
  gimp_table_attach_aligned(GTK_TABLE(table), 0, row, label, 0.0, 0.5, widget, 1, FALSE);
  return widget;
}

bool dialog(Values& v) {
  gimp_ui_init(kBinary, FALSE);
  GtkWidget* dlg = gimp_dialog_new("Cloak: protect artwork", kBinary, nullptr, GtkDialogFlags(0),
                                   gimp_standard_help_func, kProc, "_Cancel", GTK_RESPONSE_CANCEL,
                                   "_Protect", GTK_RESPONSE_OK, nullptr);
  GtkWidget* table = gtk_table_new(5, 2, FALSE);
  gtk_table_set_row_spacings(GTK_TABLE(table), 6);
  gtk_table_set_col_spacings(GTK_TABLE(table), 6);
  gtk_container_set_border_width(GTK_CONTAINER(table), 12);
  gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dlg))), table, TRUE, TRUE, 0);
  GtkWidget* mode = add_row(table, 0, "_Mode:", choice_combo(cloak::kModes));
  GtkWidget* strength = add_row(table, 1, "_Strength:", choice_combo(cloak::kStrengths));
  GtkWidget* preset = add_row(table, 2, "_Effort:", choice_combo(cloak::kPresets));
  GtkWidget* seed = add_row(table, 3, "S_eed:", gtk_spin_button_new_with_range(0, G_MAXINT32, 1));
  GtkWidget* target = add_row(
      table, 4,
      "_Target image:", gtk_file_chooser_button_new("Target image", GTK_FILE_CHOOSER_ACTION_OPEN));
  gimp_int_combo_box_set_active(GIMP_INT_COMBO_BOX(mode), v.mode);
  gimp_int_combo_box_set_active(GIMP_INT_COMBO_BOX(strength), v.strength);
  gimp_int_combo_box_set_active(GIMP_INT_COMBO_BOX(preset), v.preset);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(seed), v.seed);
  if (*v.target) gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(target), v.target);
  gtk_widget_set_tooltip_text(target,
                              "Poison: an image of another concept. Cloak: a picture in the decoy "
                              "style (empty: built-in).");
  gtk_widget_show_all(dlg);
  const bool ok = gimp_dialog_run(GIMP_DIALOG(dlg)) == GTK_RESPONSE_OK;
  if (ok) {
    gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(mode), &v.mode);
    gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(strength), &v.strength);
    gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(preset), &v.preset);
    v.seed = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(seed));
    gchar* file = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(target));
    g_strlcpy(v.target, file ? file : "", sizeof v.target);
    g_free(file);
  }
  gtk_widget_destroy(dlg);
  return ok;
}

cloak::ProtectSettings settings_of(const Values& v) {
  cloak::ProtectSettings s;
  const auto index = [](gint32 i, std::size_t n) {
    return static_cast<std::size_t>(std::clamp<gint32>(i, 0, static_cast<gint32>(n) - 1));
  };
  s.mode = cloak::kModes[index(v.mode, std::size(cloak::kModes))].value;
  s.strength = cloak::kStrengths[index(v.strength, std::size(cloak::kStrengths))].value;
  s.preset = cloak::kPresets[index(v.preset, std::size(cloak::kPresets))].value;
  s.seed = static_cast<std::uint64_t>(v.seed);
  if (*v.target) s.target = cloak::target_tensor(cloak::read_image(v.target));
  if (s.mode == cloak::Mode::Poison && !s.target.defined())
    throw cloak::Error(cloak::ErrorKind::Usage, "poison mode needs a target image");
  return s;
}

int bit_depth_of(gint32 image) {
  switch (gimp_image_get_precision(image)) {
    case GIMP_PRECISION_U8_LINEAR:
    case GIMP_PRECISION_U8_GAMMA:
      return 8;
    default:
      return 16;  // 16/32-bit integer and float: the finer grid
  }
}

// Protects the selected part of `drawable`. Returns false (with the message in `error`) on failure;
// on success `summary` says how visible the change is.
bool protect_drawable(gint32 image, gint32 drawable, const Values& v, std::string& error,
                      std::string& summary) {
  gint x, y, w, h;
  if (!gimp_drawable_mask_intersect(drawable, &x, &y, &w, &h)) return true;  // nothing selected
  const bool gray = gimp_drawable_is_gray(drawable), alpha = gimp_drawable_has_alpha(drawable);
  const int cc = gray ? 1 : 3, n = cc + (alpha ? 1 : 0);
  const Babl* format = babl_format(gray ? (alpha ? "Y'A float" : "Y' float")
                                        : (alpha ? "R'G'B'A float" : "R'G'B' float"));
  const std::size_t plane = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
  std::vector<float> pixels(plane * static_cast<std::size_t>(n)), selection(plane);
  GeglBuffer* src = gimp_drawable_get_buffer(drawable);
  gegl_buffer_get(src, GEGL_RECTANGLE(x, y, w, h), 1.0, format, pixels.data(), GEGL_AUTO_ROWSTRIDE,
                  GEGL_ABYSS_NONE);
  g_object_unref(src);
  // The selection, in the drawable's coordinates: nothing outside it may change.
  gint ox, oy;
  gimp_drawable_offsets(drawable, &ox, &oy);
  GeglBuffer* sel = gimp_drawable_get_buffer(gimp_image_get_selection(image));
  gegl_buffer_get(sel, GEGL_RECTANGLE(x + ox, y + oy, w, h), 1.0, babl_format("Y float"),
                  selection.data(), GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(sel);
  const bool whole = gimp_selection_is_empty(image);

  auto color = torch::empty({1, cc, h, w});
  auto mask = torch::empty({1, 1, h, w});
  float* c = color.data_ptr<float>();
  float* m = mask.data_ptr<float>();
  for (std::size_t i = 0; i < plane; ++i) {
    for (int k = 0; k < cc; ++k)
      c[plane * static_cast<std::size_t>(k) + i] = std::clamp(
          pixels[i * static_cast<std::size_t>(n) + static_cast<std::size_t>(k)], 0.0f, 1.0f);
    const bool visible =
        !alpha || pixels[i * static_cast<std::size_t>(n) + static_cast<std::size_t>(cc)] > 0;
    m[i] = visible && (whole || selection[i] > 0) ? 1.0f : 0.0f;
  }
  try {
    const auto encoders = cloak::load_encoders({});
    gchar* layer = gimp_item_get_name(drawable);
    const std::string name = layer ? layer : "the layer";
    g_free(layer);
    cloak::check_large_enough(encoders, w, h, name);
    gimp_progress_init("Cloak: protecting...");
    auto out = cloak::protect(encoders, {color, mask, bit_depth_of(image)}, settings_of(v),
                              [](double f) { return gimp_progress_update(f); });
    gimp_progress_end();
    const auto strength = settings_of(v).strength;
    const auto verdict =
        cloak::judge(cloak::measure_protection(encoders, color, out, bit_depth_of(image),
                                               settings_of(v), cloak::ReportDetail::Summary),
                     strength);
    char text[512];
    std::snprintf(text, sizeof text,
                  "Cloak: Butteraugli %.2f at most, %.2f overall (1 is just visible); a JPEG q%d "
                  "of it: %.2f / %.2f. %s.",
                  out.visibility.max, out.visibility.norm3,
                  cloak::strength_budget(strength).jpeg_quality, out.goal.max, out.goal.norm3,
                  cloak::describe(verdict, strength).c_str());
    summary = text;
    const float* o = out.image.data_ptr<float>();
    for (std::size_t i = 0; i < plane; ++i)
      for (int k = 0; k < cc; ++k)
        pixels[i * static_cast<std::size_t>(n) + static_cast<std::size_t>(k)] =
            o[plane * static_cast<std::size_t>(k) + i];
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  // Written through the shadow buffer: merged through the selection mask as one undo step.
  GeglBuffer* dst = gimp_drawable_get_shadow_buffer(drawable);
  gegl_buffer_set(dst, GEGL_RECTANGLE(x, y, w, h), 0, format, pixels.data(), GEGL_AUTO_ROWSTRIDE);
  g_object_unref(dst);
  gimp_drawable_merge_shadow(drawable, TRUE);
  gimp_drawable_update(drawable, x, y, w, h);
  return true;
}

void run(const gchar*, gint nparams, const GimpParam* param, gint* nreturn_vals,
         GimpParam** return_vals) {
  static GimpParam values[2];
  *nreturn_vals = 1;
  *return_vals = values;
  values[0].type = GIMP_PDB_STATUS;
  values[0].data.d_status = GIMP_PDB_SUCCESS;
  gegl_init(nullptr, nullptr);
  const auto run_mode = static_cast<GimpRunMode>(param[0].data.d_int32);
  const gint32 image = param[1].data.d_image, drawable = param[2].data.d_drawable;
  Values v;
  switch (run_mode) {
    case GIMP_RUN_INTERACTIVE:
      v = saved_values();
      if (!dialog(v)) {
        values[0].data.d_status = GIMP_PDB_CANCEL;
        return;
      }
      break;
    case GIMP_RUN_NONINTERACTIVE:
      if (nparams != 8) {
        values[0].data.d_status = GIMP_PDB_CALLING_ERROR;
        return;
      }
      v.mode = param[3].data.d_int32;
      v.strength = param[4].data.d_int32;
      v.preset = param[5].data.d_int32;
      v.seed = param[6].data.d_int32;
      g_strlcpy(v.target, param[7].data.d_string ? param[7].data.d_string : "", sizeof v.target);
      break;
    case GIMP_RUN_WITH_LAST_VALS:
      v = saved_values();
      break;
  }
  gimp_image_undo_group_start(image);
  std::string error, summary;
  const bool ok = protect_drawable(image, drawable, v, error, summary);
  gimp_image_undo_group_end(image);
  if (!ok) {
    g_message("Cloak could not protect the image: %s", error.c_str());
    values[0].data.d_status = GIMP_PDB_EXECUTION_ERROR;
    *nreturn_vals = 2;
    values[1].type = GIMP_PDB_STRING;
    values[1].data.d_string = const_cast<gchar*>("Cloak failed; see the message");
    return;
  }
  if (!summary.empty()) g_message("%s", summary.c_str());
  if (run_mode == GIMP_RUN_INTERACTIVE) gimp_set_data(kProc, &v, sizeof v);
  if (run_mode != GIMP_RUN_NONINTERACTIVE) gimp_displays_flush();
}

}  // namespace

const GimpPlugInInfo PLUG_IN_INFO = {nullptr, nullptr, query, run};

int main(int argc, char** argv) {
  cloak::restart_with_short_openmp_spin(argv);
  return gimp_main(&PLUG_IN_INFO, argc, argv);
}
