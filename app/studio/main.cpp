#include <QApplication>
#include <QCommandLineParser>
#include <QDir>

#include "main_window.h"
#include "model/model_dir.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("lincat-studio");
    QApplication::setOrganizationName("Lincat");
    QCommandLineParser parser;
    parser.addHelpOption();
    QCommandLineOption model({"m", "model"}, "Model folder or cache name (default: the default model).", "model");
    QCommandLineOption screenshot("screenshot", "Render the window to a PNG file and quit.", "png");
    parser.addOption(model);
    parser.addOption(screenshot);
    parser.process(app);

    lincat::studio::MainWindow window;
    try {
        window.open_model(QString::fromStdString(lincat::resolve_model_dir(parser.value(model).toStdString())));
    } catch (const std::exception&) {
        // No model yet: the window says how to open one.
    }
    window.show();
    if (parser.isSet(screenshot)) {
        QApplication::processEvents();
        return window.grab().save(parser.value(screenshot)) ? 0 : 1;
    }
    return app.exec();
}
