#include <unistd.h>

#include <QApplication>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <QCommandLineParser>
#include <QDir>
#include <QSettings>

#include "main_window.h"
#include "session_view.h"
#include "model/model_dir.h"

// --headless (or no display at all): run the main job, `lincat linearize`, in this terminal
// instead of opening a window. Decided before QApplication exists: it aborts without a display.
static int run_headless(int argc, char** argv) {
    std::string self = argv[0], dir = self.find('/') == std::string::npos ? "." : self.substr(0, self.rfind('/'));
    std::string lincat = std::getenv("LINCAT_BIN") ? std::getenv("LINCAT_BIN") : dir + "/lincat";
    std::vector<std::string> args = {lincat, "linearize"};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--headless" || a == "--linearize") continue;
        if (a == "-m") a = "--model";
        if (a == "-w") a = "--workspace";
        args.push_back(a);
    }
    std::vector<char*> c;
    for (auto& a : args) c.push_back(a.data());
    c.push_back(nullptr);
    std::fprintf(stderr, "lincat-studio: no window (--headless or no display); running: lincat linearize\n");
    execv(lincat.c_str(), c.data());
    std::fprintf(stderr, "lincat-studio: cannot run %s: %s\n", lincat.c_str(), std::strerror(errno));
    return 1;
}

int main(int argc, char** argv) {
    bool headless = false, linearize = false, screenshots = false;
    for (int i = 1; i < argc; ++i) {
        headless = headless || !std::strcmp(argv[i], "--headless");
        linearize = linearize || !std::strcmp(argv[i], "--linearize");
        screenshots = screenshots || !std::strcmp(argv[i], "--screenshots");
    }
    const bool no_display =
        !std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY") && !std::getenv("QT_QPA_PLATFORM");
    if (headless || (no_display && !screenshots)) {
        if (!headless && !linearize) {
            std::fprintf(stderr, "lincat-studio: no display; use --headless --linearize to run the main job here\n");
            return 2;
        }
        return run_headless(argc, argv);
    }
    QApplication app(argc, argv);
    QApplication::setApplicationName("lincat-studio");
    QApplication::setOrganizationName("Lincat");
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption model({"m", "model"}, "Model folder or cache name (default: the default model).", "model");
    QCommandLineOption workspace({"w", "workspace"}, "Workspace folder (default: the last one).", "workspace");
    QCommandLineOption screenshots_opt("screenshots", "Write a PNG of each main view into DIR and quit.", "dir");
    QCommandLineOption linearize_opt("linearize", "Start the main job (stage 1 -> stage 2 -> eval) at once.");
    QCommandLineOption headless_opt("headless", "No window: run the main job (lincat linearize) in the terminal.");
    parser.addOption(model);
    parser.addOption(workspace);
    parser.addOption(screenshots_opt);
    parser.addOption(linearize_opt);
    parser.addOption(headless_opt);
    parser.process(app);

    lincat::studio::MainWindow window;
    QSettings settings;
    try {
        QString m = parser.isSet(model) ? parser.value(model) : settings.value("session/model", "default").toString();
        window.open_model(QString::fromStdString(lincat::resolve_model_dir(m.toStdString())));
    } catch (const std::exception&) {
        // No model yet: the window says how to open one.
    }
    QString ws = parser.isSet(workspace) ? parser.value(workspace) : settings.value("session/workspace").toString();
    if (!ws.isEmpty()) window.open_workspace(ws);
    if (parser.isSet(screenshots_opt)) window.resize(1600, 1000);
    window.show();
    if (parser.isSet(screenshots_opt)) return window.save_screenshots(parser.value(screenshots_opt)) ? 0 : 1;
    if (parser.isSet(linearize_opt)) {
        if (ws.isEmpty()) window.open_workspace("lincat-workspace");
        window.session()->start_linearize();
    }
    return app.exec();
}
