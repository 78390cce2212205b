# Compiles the page into the binary: writes OUT, a C++ source defining cloak::web::kPage as the
# text of IN. Run by web/CMakeLists.txt whenever the page changes.
file(READ "${IN}" page)
file(WRITE "${OUT}" "// Generated from web/page.html by web/embed_page.cmake: do not edit.\n"
                    "namespace cloak::web {\n"
                    "extern const char* const kPage;\n"
                    "const char* const kPage = R\"CLOAK_PAGE(${page})CLOAK_PAGE\";\n"
                    "}  // namespace cloak::web\n")
