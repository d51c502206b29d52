#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QSettings>

#include "main_window.h"
#include "model/model_dir.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("lincat-studio");
    QApplication::setOrganizationName("Lincat");
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption model({"m", "model"}, "Model folder or cache name (default: the default model).", "model");
    QCommandLineOption workspace({"w", "workspace"}, "Workspace folder (default: the last one).", "workspace");
    QCommandLineOption screenshots("screenshots", "Write a PNG of each main view into DIR and quit.", "dir");
    parser.addOption(model);
    parser.addOption(workspace);
    parser.addOption(screenshots);
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
    window.show();
    if (parser.isSet(screenshots)) return window.save_screenshots(parser.value(screenshots)) ? 0 : 1;
    return app.exec();
}
